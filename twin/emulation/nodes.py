"""Docker containers as Mininet hosts: the GPU-worker stand-ins.

Keeps Containernet's API (``dimage``, ``dcmd``, ``environment``, ``volumes``, ``cpu_quota``,
``cpu_period``, ``cpu_shares``, ``mem_limit``, ``updateCpuLimit``) so scripts port with a changed
import, but differs in one deliberate way: the node's Mininet shell is the *host's* bash entered
into the container's network namespace only. Interfaces, tc, ethtool, ping and iperf3 therefore
come from the host, and any image with ``/bin/sh`` works as a worker: no bash, iproute2 or
capabilities are needed inside. Commands that must see the container's filesystem (the
worker-side traffic code) go through :meth:`DockerHost.dexec`.
"""

from __future__ import annotations

from typing import Any, Optional

from docker.errors import APIError, ImageNotFound, NotFound
from mininet.node import Host

from twin.errors import TwinError
from twin.host import rundirs
from twin.host.engine import docker_client

# Keeps PID 1 alive with nothing but shell builtins, so images without sleep/tail work.
IDLE_CMD = ["/bin/sh", "-c", "while read _; do :; done"]
# TCP buffers big enough for a long fat link's bandwidth-delay product (per-namespace sysctls).
WORKER_SYSCTLS = {
    "net.ipv4.tcp_rmem": "4096 131072 134217728",
    "net.ipv4.tcp_wmem": "4096 65536 134217728",
    # collectives pause between steps; restarting slow start each time would halve a WAN flow
    "net.ipv4.tcp_slow_start_after_idle": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}

def container_name(node: str) -> str:
    return f"{rundirs.prefix()}-{node}"


def create_container(node: str, image: str, run_id: str, dcmd: Any = None,
                     environment: Optional[dict] = None, volumes: Any = None,
                     cpu_quota: Optional[int] = None, cpu_period: Optional[int] = None,
                     cpu_shares: Optional[int] = None, mem_limit: Any = None,
                     labels: Optional[dict] = None, nano_cpus: Optional[int] = None):
    """Start a worker container with no network of its own; the twin wires it afterwards."""
    client = docker_client()
    all_labels = {rundirs.LABEL: run_id, f"{rundirs.LABEL}.node": node}
    all_labels.update(labels or {})
    kwargs: dict[str, Any] = dict(
        name=container_name(node), hostname=node, detach=True, stdin_open=True, init=True,
        network_mode="none", labels=all_labels, environment=environment or {},
        volumes=volumes or {}, cap_drop=["ALL"], cap_add=["NET_RAW"],
        sysctls=WORKER_SYSCTLS, command=dcmd or IDLE_CMD,
    )
    for key, val in (("cpu_quota", cpu_quota), ("cpu_period", cpu_period),
                     ("cpu_shares", cpu_shares), ("mem_limit", mem_limit),
                     ("nano_cpus", nano_cpus)):
        if val is not None and val != -1:
            kwargs[key] = val
    try:
        container = client.containers.run(image, **kwargs)
        container.reload()
    except ImageNotFound:
        raise TwinError(f"worker image {image!r} not found; run 'make setup' or build it") from None
    except APIError as exc:
        raise TwinError(f"cannot start container for {node}: {exc.explanation or exc}") from None
    if not container.attrs["State"].get("Running"):
        logs = container.logs(tail=5).decode(errors="replace").strip()
        raise TwinError(f"container for {node} exited at once: {logs or 'no output'}")
    return container


def remove_container(container) -> None:
    try:
        container.remove(force=True)
    except NotFound:
        pass


class DockerHost(Host):
    """A Mininet host backed by a real Docker container."""

    def __init__(self, name: str, dimage: Optional[str] = None, dcmd: Any = None,
                 environment: Optional[dict] = None, volumes: Any = None,
                 cpu_quota: int = -1, cpu_period: Optional[int] = None,
                 cpu_shares: Optional[int] = None, mem_limit: Any = None,
                 run_id: str = "api", container=None, **kwargs):
        from twin.host.images import worker_image_ref
        self.dimage = dimage or worker_image_ref()
        self.dcmd = dcmd
        self.container = container or create_container(
            name, self.dimage, run_id, dcmd=dcmd, environment=environment, volumes=volumes,
            cpu_quota=cpu_quota, cpu_period=cpu_period, cpu_shares=cpu_shares,
            mem_limit=mem_limit)
        self.did = self.container.id
        self.container_pid = int(self.container.attrs["State"]["Pid"])
        super().__init__(name, **kwargs)

    def _popen(self, cmd, **params):
        # Mininet starts each node's shell with 'mnexec -cdn ... bash'; ours enters the
        # container's network namespace instead of creating a new one.
        if cmd and cmd[0] == "mnexec" and "bash" in cmd and self.shell is None:
            cmd = ["nsenter", "--target", str(self.container_pid), "--net", "--"] + \
                cmd[cmd.index("env"):-1] + [f"{rundirs.prefix()}:{self.name}"]
            params["start_new_session"] = True
        return super()._popen(cmd, **params)

    def dexec(self, argv: list[str], **kwargs) -> tuple[int, str]:
        """Run a command inside the container (its filesystem, its view); return (rc, output)."""
        result = self.container.exec_run(argv, **kwargs)
        out = result.output.decode(errors="replace") if isinstance(result.output, bytes) else ""
        return result.exit_code, out

    def updateCpuLimit(self, cpu_quota: int = -1, cpu_period: int = -1, cpu_shares: int = -1,
                       cores: Optional[str] = None) -> None:
        kwargs: dict[str, Any] = {k: v for k, v in (("cpu_quota", cpu_quota),
                                                    ("cpu_period", cpu_period),
                                                    ("cpu_shares", cpu_shares)) if v != -1}
        if cores:
            kwargs["cpuset_cpus"] = cores
        if kwargs:
            self.container.update(**kwargs)

    def updateMemoryLimit(self, mem_limit: Any) -> None:
        self.container.update(mem_limit=mem_limit, memswap_limit=-1)

    def terminate(self) -> None:
        super().terminate()
        remove_container(self.container)
