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
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from twin.host import rundirs
from twin.host.processes import WORKLOAD_ENV

# "twin.delayline": the Python delay line of earlier versions, which a crashed run may have left
PROCESS_MARKERS = ("twin-delayline", "twin.delayline", "controllers.run")


@dataclass
class CleanReport:
    processes: list[int] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(len(v) for v in self.__dict__.values())

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


def kill_processes(pids: list[int], grace: float = 2.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def twin_containers() -> list[str]:
    proc = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={rundirs.LABEL}"],
                          capture_output=True, text=True)
    return proc.stdout.split() if proc.returncode == 0 else []


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
    return [l.split()[0] for l in proc.stdout.splitlines() if l.startswith("twin-")]


def clean(remove_state: bool = True) -> CleanReport:
    report = CleanReport()
    report.processes = twin_processes()
    kill_processes(report.processes)
    report.containers = twin_containers()
    if report.containers:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: subprocess.run(["docker", "rm", "-f", c],
                                                   capture_output=True), report.containers))
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
    if remove_state:
        run = rundirs.run_dir()
        rundirs.state_file().unlink(missing_ok=True)
        shutil.rmtree(run / "links", ignore_errors=True)
    return report
