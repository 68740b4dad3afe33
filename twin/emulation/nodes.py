"""Docker containers as Mininet hosts: the GPU-worker stand-ins.

Keeps Containernet's API (``dimage``, ``dcmd``, every keyword of its Docker node, mapped or
refused in :func:`run_options`; ``updateCpuLimit``, ``updateMemoryLimit``) so scripts port with a
changed import, but differs in one deliberate way: the node's Mininet shell is the *host's* bash entered
into the container's network namespace only. Interfaces, tc, ethtool, ping and iperf3 therefore
come from the host, and any image with ``/bin/sh`` works as a worker: no bash, iproute2 or
capabilities are needed inside. Commands that must see the container's filesystem (the
worker-side traffic code) go through :meth:`DockerHost.dexec`.
"""

from __future__ import annotations

from typing import Any, Optional

from docker.errors import APIError, BuildError, ImageNotFound, NotFound
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


# Containernet's Docker keywords handed to the engine as they are (None, -1 or empty: not set).
ENGINE_KEYWORDS = ("cpu_quota", "cpu_period", "cpu_shares", "cpuset_cpus", "mem_limit",
                   "memswap_limit", "nano_cpus", "shm_size", "environment", "volumes", "tmpfs",
                   "dns", "ipc_mode", "devices", "storage_opt", "device_requests")
# Need a Docker network: the twin's containers have none unless network_mode names one.
PUBLISHING_KEYWORDS = ("ports", "port_bindings", "publish_all_ports")
# What Mininet's Host takes (Host.config); every other keyword of a Docker host is the engine's.
MININET_HOST_KEYWORDS = ("ip", "mac", "defaultRoute", "lo")


def port_key(port: Any) -> str:
    """A container port as the engine names it: 80, '80' and '80/tcp' are '80/tcp'."""
    key = str(port)
    return key if "/" in key else f"{key}/tcp"


def _is_set(value: Any) -> bool:
    return value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                      and value == -1) and value != [] and value != {}


def run_options(node: str, keywords: dict[str, Any]) -> dict[str, Any]:
    """The Docker SDK's ``containers.run`` options for a worker from Containernet's keywords.

    Every keyword Containernet's Docker node accepts either maps to the engine or is refused
    here with one line naming it; nothing is dropped. The fixed part: no Docker network
    (``network_mode='none'``) unless one is named, every capability dropped but NET_RAW (the
    twin configures interfaces from outside, with the host's tools) plus ``cap_add``, the
    worker sysctls under ``sysctls``, and never privileged unless ``privileged=True`` comes
    with ``allow_privileged=True``.
    """
    rest = dict(keywords)
    opts: dict[str, Any] = {}
    for key in ENGINE_KEYWORDS:
        value = rest.pop(key, None)
        if _is_set(value):
            opts[key] = value
    cpus = rest.pop("cpus", None)
    if cpus is not None:
        try:
            cores = float(cpus)
        except (TypeError, ValueError):
            raise TwinError(f"{node}: cpus={cpus!r} is not a number of CPUs") from None
        if "nano_cpus" in opts:
            raise TwinError(f"{node}: cpus and nano_cpus both given; give one")
        opts["nano_cpus"] = int(round(cores * 1e9))
    opts["network_mode"] = network_mode = rest.pop("network_mode", None) or "none"
    if network_mode == "host" or str(network_mode).startswith("container:"):
        raise TwinError(f"{node}: network_mode={network_mode!r} is not supported: the twin wires "
                        "the container's own network namespace (use 'none', the default, or a "
                        "Docker network such as 'bridge' beside the emulated links)")
    publishing = {key: rest.pop(key, None) for key in PUBLISHING_KEYWORDS}
    if network_mode == "none":
        given = [key for key, value in publishing.items() if value]
        if given:
            raise TwinError(f"{node}: {given[0]} needs a Docker network: the twin's containers "
                            "have none unless asked; add network_mode='bridge'")
    else:
        publish_all = publishing["publish_all_ports"] is not False  # Containernet's default: True
        listed, bindings = publishing["ports"] or [], publishing["port_bindings"] or {}
        if not publish_all:
            # Containernet would expose these without publishing them; the SDK's containers.run
            # binds every port it is given, so exposing alone cannot be asked for
            bound = {port_key(p) for p in bindings}
            unbound = [p for p in listed if port_key(p) not in bound]
            if unbound:
                raise TwinError(f"{node}: ports={unbound!r} with publish_all_ports=False would only "
                                "be exposed, which the twin does not offer: it publishes ports "
                                "(publish_all_ports=True, the default) or binds them (port_bindings)")
        ports: dict[Any, Any] = {p: None for p in listed} if publish_all else {}
        ports.update(bindings)
        if ports:
            opts["ports"] = ports
        opts["publish_all_ports"] = publish_all
    privileged, allowed = bool(rest.pop("privileged", False)), bool(rest.pop("allow_privileged", False))
    if privileged and not allowed:
        raise TwinError(f"{node}: privileged=True gives the container every capability and the "
                        "host's devices; add allow_privileged=True if that is meant")
    if privileged:
        opts["privileged"] = True
    else:
        extra = [str(c) for c in rest.pop("cap_add", None) or []
                 if str(c).upper().removeprefix("CAP_") != "NET_RAW"]
        opts["cap_drop"], opts["cap_add"] = ["ALL"], ["NET_RAW"] + extra
    rest.pop("cap_add", None)
    opts["sysctls"] = {**WORKER_SYSCTLS, **(rest.pop("sysctls", None) or {})}
    if rest:
        key = sorted(rest)[0]
        raise TwinError(f"{node}: unknown keyword {key}={rest[key]!r} for a Docker host")
    return opts


def create_container(node: str, image: str, run_id: str, dcmd: Any = None,
                     labels: Optional[dict] = None, name: Optional[str] = None,
                     entrypoint: Optional[list[str]] = None, rm: bool = False,
                     **keywords: Any):
    """Start a worker container with no network of its own; the twin wires it afterwards.

    ``keywords``: Containernet's Docker keywords (see :func:`run_options`). ``name``: the
    container's name (default ``<prefix>-<node>``); ``rm``: first remove a container of that
    name the twin left. ``entrypoint=[]`` runs ``dcmd`` without the image's entrypoint.
    """
    client = docker_client()
    opts = run_options(node, keywords)
    name = name or container_name(node)
    if rm:
        remove_leftover(client, name)
    all_labels = {rundirs.LABEL: run_id, f"{rundirs.LABEL}.node": node}
    all_labels.update(labels or {})
    opts.update(name=name, hostname=node, detach=True, stdin_open=True, init=True,
                labels=all_labels, command=dcmd or IDLE_CMD)
    opts.setdefault("environment", {})
    if entrypoint is not None:
        opts["entrypoint"] = entrypoint
    try:
        container = client.containers.run(image, **opts)
        container.reload()
    except ImageNotFound:
        raise TwinError(f"image {image!r} for {node} is not on this machine and nothing is pulled: "
                        "build or load it (the worker image: make setup)") from None
    except APIError as exc:
        raise TwinError(f"cannot start container for {node}: {exc.explanation or exc}") from None
    if not container.attrs["State"].get("Running"):
        logs = container.logs(tail=5).decode(errors="replace").strip()
        remove_container(container)
        raise TwinError(f"container for {node} exited at once: {logs or 'no output'}")
    return container


def remove_leftover(client, name: str) -> None:
    """Containernet's ``rm=True``: remove a container of this name, only if the twin made it."""
    try:
        old = client.containers.get(name)
    except NotFound:
        return
    if rundirs.LABEL not in (old.labels or {}):
        raise TwinError(f"a container named {name} exists and is not the twin's; not removing it")
    remove_container(old)


def build_image(node: str, build_params: dict[str, Any]) -> str:
    """Containernet's ``build_params``: build the image here (from local images only); its id."""
    try:
        image, _ = docker_client().images.build(**build_params)
    except BuildError as exc:
        raise TwinError(f"building the image for {node} failed: {exc.msg}") from None
    except (APIError, TypeError) as exc:
        raise TwinError(f"cannot build the image for {node}: {exc}") from None
    return build_params.get("tag") or image.id


def remove_container(container) -> None:
    try:
        container.remove(force=True)
    except NotFound:
        pass


class DockerHost(Host):
    """A Mininet host backed by a real Docker container.

    Takes Containernet's Docker keywords (``dimage``, ``dcmd``, ``build_params``, ``rm`` and the
    engine's, see :func:`run_options`) beside Mininet's host keywords (``ip``, ``mac``,
    ``defaultRoute``); ``container``: one already started (then no engine keywords).
    """

    def __init__(self, name: str, dimage: Optional[str] = None, dcmd: Any = None,
                 build_params: Optional[dict[str, Any]] = None, run_id: str = "api",
                 container=None, dname: Optional[str] = None,
                 entrypoint: Optional[list[str]] = None, rm: bool = False, **params: Any):
        from twin.host.images import worker_image_ref
        host_params = {k: params.pop(k) for k in MININET_HOST_KEYWORDS if k in params}
        if container is not None and params:
            raise TwinError(f"{name}: {sorted(params)[0]} cannot apply to a container already started")
        if build_params and build_params.get("path"):
            build_params = {"tag": dimage, **build_params} if dimage else dict(build_params)
            dimage = build_image(name, build_params)
        self.dimage = dimage or worker_image_ref()
        self.dcmd = dcmd
        self.resources = {k: params.get(k) for k in ("cpu_quota", "cpu_period", "cpu_shares",
                                                     "cpuset_cpus", "mem_limit", "memswap_limit")}
        self.container = container or create_container(
            name, self.dimage, run_id, dcmd=dcmd, name=dname, entrypoint=entrypoint, rm=rm,
            **params)
        self.did = self.container.id
        self.container_pid = int(self.container.attrs["State"]["Pid"])
        super().__init__(name, **host_params)

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

    def start(self) -> None:
        """Containernet's ``Docker.start()``: run the image's ENTRYPOINT and CMD inside the
        container, in the background (the container itself runs ``dcmd`` or an idle loop)."""
        config = docker_client().images.get(self.dimage).attrs.get("Config") or {}
        argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
        if argv and argv not in (["/bin/bash"], ["bash"], ["/bin/sh"], ["sh"]):
            self.container.exec_run(argv, detach=True)

    def update_resources(self, **resources: Any) -> None:
        """Change the running container's limits (the engine's ``update`` keywords)."""
        try:
            self.container.update(**resources)
        except TypeError as exc:
            raise TwinError(f"{self.name}: {exc}") from None
        except APIError as exc:
            raise TwinError(f"{self.name}: cannot update {sorted(resources)}: "
                            f"{exc.explanation or exc}") from None
        self.resources.update(resources)

    def updateCpuLimit(self, cpu_quota: int = -1, cpu_period: int = -1, cpu_shares: int = -1,
                       cores: Optional[str] = None) -> None:
        """Containernet's call; -1 (the default) leaves a limit as it is."""
        kwargs: dict[str, Any] = {k: v for k, v in (("cpu_quota", cpu_quota),
                                                    ("cpu_period", cpu_period),
                                                    ("cpu_shares", cpu_shares)) if v != -1}
        if cores:
            kwargs["cpuset_cpus"] = cores
        if kwargs:
            self.update_resources(**kwargs)

    def updateMemoryLimit(self, mem_limit: Any = -1, memswap_limit: Any = -1) -> None:
        """Containernet's call; swap is unlimited unless ``memswap_limit`` is given."""
        kwargs: dict[str, Any] = {}
        if mem_limit != -1:
            kwargs["mem_limit"] = mem_limit
        if memswap_limit != -1 or kwargs:
            kwargs["memswap_limit"] = memswap_limit
        if kwargs:
            self.update_resources(**kwargs)

    def terminate(self) -> None:
        super().terminate()
        remove_container(self.container)
