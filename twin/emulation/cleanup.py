"""Remove everything any twin run left behind; safe to run at any time, any number of times.

Finds the twin's objects by the marks it puts on them, not by remembering them, so it works
after ``kill -9``: containers by Docker label, OVS bridges by external-id, interfaces and
processes by the twin's name prefix, scratch namespaces by name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from docker.errors import DockerException
from docker.models.containers import Container
from requests.exceptions import RequestException

from twin.emulation import delayline
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.engine import docker_client
from twin.host.processes import WORKLOAD_ENV, parallel, terminate

PROCESS_MARKERS = (delayline.PROGRAM, "controllers.run")  # in the command lines of its processes
KILL_GRACE_S = 2.0  # SIGTERM, then this long before SIGKILL


@dataclass
class CleanReport:
    processes: list[int] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in self.__dict__.items()]
        return "removed " + ", ".join(parts)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def twin_processes() -> list[int]:
    """Delay lines, controllers, node shells and in-namespace workloads of the twin (never this
    process)."""
    shell_re = re.compile(rf"^(mininet:{re.escape(rundirs.prefix())}\d+|{re.escape(rundirs.prefix())}:\S+)$")
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        args = cmdline(int(entry.name))
        if not args:
            continue
        joined = " ".join(args)
        if any(m in joined for m in PROCESS_MARKERS) or (
                "bash" in joined and shell_re.match(args[-1])) or _is_workload(entry):
            found.append(int(entry.name))
    return found


def _is_workload(proc: Path) -> bool:
    """Started by the twin inside a worker's namespace (iperf3, probes, pings): see ns_prefix."""
    try:
        return f"{WORKLOAD_ENV}=1".encode() in (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def kill_processes(pids: list[int]) -> None:
    terminate(pids, KILL_GRACE_S)


def twin_containers() -> list[str]:
    """Ids of the containers any twin run made (running or not), by their label."""
    return [c.id for c in _labelled_containers()]


def _labelled_containers() -> list[Container]:
    """Listed without inspecting each one (sparse): the id is all removal needs. None when the
    engine does not answer: then there is nothing of the twin's in it to remove either."""
    try:
        return docker_client().containers.list(all=True, sparse=True,
                                               filters={"label": rundirs.LABEL})
    except (TwinError, DockerException, RequestException):
        return []


def _remove(container: Container) -> None:
    """Forced (running ones too); already gone or going is fine: the goal is that it is not."""
    try:
        container.remove(force=True)
    except (DockerException, RequestException):
        pass


def twin_bridges() -> list[str]:
    proc = subprocess.run(["ovs-vsctl", "--timeout=10", "--format=json", "--columns=name,external_ids",
                           "list", "Bridge"], capture_output=True, text=True)
    if proc.returncode != 0:
        return []
    out = []
    for name, ext in json.loads(proc.stdout).get("data", []):
        pairs = dict(ext[1]) if isinstance(ext, list) and ext and ext[0] == "map" else {}
        if rundirs.LABEL in pairs:
            out.append(name)
    return out


def twin_interfaces() -> list[str]:
    """Root-namespace interfaces with the twin's names: switch ports and delay-line ends."""
    p = re.escape(rundirs.prefix())
    pattern = re.compile(rf"^({p}\d+-eth\d+|{p}d\d+[ab]|{p}\d+)$")
    proc = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
    names = []
    for line in proc.stdout.splitlines():
        m = re.match(r"\d+:\s+([^:@\s]+)", line)
        if m and pattern.match(m.group(1)):
            names.append(m.group(1))
    return names


def twin_namespaces() -> list[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("twin-")]


def clean() -> CleanReport:
    """Processes first (so none recreates what is removed next), then containers, bridges, the
    interfaces left in the root namespace, scratch namespaces, the run's state and the captures
    of a killed trace."""
    report = CleanReport()
    report.processes = twin_processes()
    kill_processes(report.processes)
    containers = _labelled_containers()
    report.containers = [c.id for c in containers]
    parallel(_remove, containers)
    report.bridges = twin_bridges()
    if report.bridges:  # one ovsdb transaction for all bridges
        argv = ["ovs-vsctl", "--timeout=30"]
        for br in report.bridges:
            argv += ["--", "--if-exists", "del-br", br]
        subprocess.run(argv, capture_output=True)
    report.interfaces = twin_interfaces()
    if report.interfaces:  # one process; names come from the kernel and match our pattern
        batch = "".join(f"link del {i}\n" for i in report.interfaces)
        subprocess.run(["ip", "-force", "-batch", "-"], input=batch, capture_output=True, text=True)
    report.namespaces = twin_namespaces()
    for ns in report.namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    rundirs.state_file().unlink(missing_ok=True)
    shutil.rmtree(rundirs.run_dir() / "links", ignore_errors=True)
    shutil.rmtree(rundirs.traces_dir(), ignore_errors=True)
    return report
