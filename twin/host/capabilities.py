"""What this machine offers the twin, found by trying, never by guessing from the OS name.

Each probe returns a :class:`Capability` with the mechanism the twin will use. Parsers of tool
output are pure functions so tests can feed them real outputs captured on other machines.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from twin.errors import TwinError


@dataclass
class Capability:
    name: str
    ok: bool
    detail: str
    mechanism: str = ""
    fix: str = ""


def _run(argv: list[str]) -> tuple[int, str]:
    """Exit code and output of a probe; a missing or hanging tool is an answer too."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=15)
        return p.returncode, (p.stdout + p.stderr).strip()
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]}: timed out"


# ---- parsers (pure) ----------------------------------------------------------

def parse_ovs_version(text: str) -> Optional[str]:
    """'ovs-vsctl (Open vSwitch) 3.1.0' -> '3.1.0'."""
    m = re.search(r"Open vSwitch\)\s+([0-9][0-9A-Za-z.+~-]*)", text)
    return m.group(1) if m else None


def parse_datapath_types(text: str) -> list[str]:
    """ovs-vsctl get Open_vSwitch . datapath_types -> ['netdev', 'system']."""
    return re.findall(r"[a-z]+", text.strip().strip("[]"))


def qdisc_supported(rc: int, output: str) -> bool:
    """Did 'tc qdisc add ...' work? 'Specified qdisc kind is unknown.' means the module is missing."""
    return rc == 0 and "unknown" not in output.lower()


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo -> {'MemTotal': bytes, ...}."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if m:
            out[m.group(1)] = int(m.group(2)) * 1024
    return out


def cgroup_version(mounts_text: str) -> int:
    """2 when /sys/fs/cgroup itself is cgroup2 (unified), else 1 (legacy or hybrid)."""
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "/sys/fs/cgroup":
            return 2 if parts[2] == "cgroup2" else 1
    return 1


# ---- probes ------------------------------------------------------------------

def _scratch_qdisc(kind_args: list[str]) -> tuple[int, str]:
    """Add a qdisc on a veth in a throwaway namespace, report, and remove everything."""
    ns = f"twin-probe-{uuid.uuid4().hex[:8]}"
    rc, out = _run(["ip", "netns", "add", ns])
    if rc != 0:
        return rc, out
    try:
        rc, out = _run(["ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])
        if rc != 0:
            return rc, out
        return _run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "p0", "root"]
                    + kind_args)
    finally:
        _run(["ip", "netns", "del", ns])


@functools.lru_cache(maxsize=None)
def has_netem() -> bool:
    if os.environ.get("TWIN_FORCE_DELAYLINE") == "1":
        return False
    return qdisc_supported(*_scratch_qdisc(["netem", "delay", "1ms"]))


@functools.lru_cache(maxsize=None)
def has_htb() -> bool:
    return qdisc_supported(*_scratch_qdisc(["handle", "1:", "htb"]))


def ovs_kernel_module() -> bool:
    return Path("/sys/module/openvswitch").exists()


def link_mechanism() -> str:
    """'netem' where the kernel has it, else the userspace 'delayline'."""
    return "netem" if has_netem() else "delayline"


def ovs_datapath() -> str:
    """'kernel' with the OVS module loaded/built in, else the userspace 'user' (netdev) datapath."""
    if os.environ.get("TWIN_FORCE_USERSPACE_OVS") == "1":
        return "user"
    return "kernel" if ovs_kernel_module() else "user"


def probe_docker() -> Capability:
    from twin.host.engine import engine_version
    try:
        version = engine_version()
    except TwinError as exc:
        return Capability("docker engine", False, str(exc),
                          fix="run 'make setup' (installs docker.io and starts dockerd)")
    mounts = Path("/proc/mounts").read_text()
    return Capability("docker engine", True, f"{version}, cgroup v{cgroup_version(mounts)}")


def probe_ovs() -> Capability:
    rc, out = _run(["ovs-vsctl", "--version"])
    version = parse_ovs_version(out) if rc == 0 else None
    if not version:
        return Capability("open vswitch", False, "ovs-vsctl not found",
                          fix="run 'make setup' (apt-get install openvswitch-switch)")
    rc, out = _run(["ovs-vsctl", "--timeout=5", "get", "Open_vSwitch", ".", "datapath_types"])
    if rc != 0:
        return Capability("open vswitch", False, f"{version}, daemons not answering",
                          fix="run 'make setup' (starts ovsdb-server and ovs-vswitchd)")
    dp = ovs_datapath()
    mech = "kernel datapath" if dp == "kernel" else "userspace datapath (netdev), offloads off"
    types = ", ".join(parse_datapath_types(out)) or "none"
    return Capability("open vswitch", True,
                      f"{version}, datapath types {types}, kernel module "
                      f"{'present' if dp == 'kernel' else 'absent'}", mechanism=mech)


def probe_netem() -> Capability:
    if has_netem():
        return Capability("tc netem", True, "sch_netem present", mechanism="netem delay/loss/jitter")
    return Capability("tc netem", True, "sch_netem missing (tested in a scratch namespace)",
                      mechanism="userspace delay line per WAN link")


def probe_delayline() -> Capability:
    """The compiled delay line is needed wherever netem is missing."""
    from twin.emulation.delayline import binary_path
    try:
        path = binary_path()
    except OSError as exc:
        return Capability("delay line", False, str(exc), fix="run 'make setup'")
    if path.exists():
        return Capability("delay line", True, str(path))
    needed = not has_netem()
    return Capability("delay line", not needed, f"{path.name} not built",
                      fix="run 'make setup' (compiles twin/delayline.c with gcc)" if needed else "")


def probe_htb() -> Capability:
    if has_htb():
        return Capability("tc htb", True, "sch_htb present", mechanism="HTB rate + byte FIFO queue")
    return Capability("tc htb", False, "sch_htb missing", fix="a kernel with sch_htb is required")


def probe_tool(name: str, fix: str) -> Capability:
    path = shutil.which(name)
    return Capability(name, bool(path), path or "not found", fix="" if path else fix)


def probe_osken() -> Capability:
    try:
        version = importlib.metadata.version("os-ken")
        return Capability("controller runtime", True, f"os-ken {version}",
                          mechanism="Ryu API (OpenFlow 1.3) on os-ken")
    except importlib.metadata.PackageNotFoundError:
        return Capability("controller runtime", False, "os-ken not installed",
                          fix="run 'make setup' (pip installs os-ken into .venv)")


def probe_image() -> Capability:
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    from twin.host.engine import docker_client
    from twin.host.images import image_exists, worker_image_ref
    ref = worker_image_ref()
    try:
        present = image_exists(docker_client(), ref)
    except (TwinError, DockerException, RequestException):
        return Capability("worker image", False, f"{ref}: cannot tell, the docker engine is not "
                          "answering", fix="run 'make setup' (starts dockerd, builds the image)")
    if present:
        return Capability("worker image", True, ref)
    return Capability("worker image", False, f"{ref} not built",
                      fix="run 'make setup' (builds it locally, no registry needed)")


def probe_resources() -> Capability:
    mem = parse_meminfo(Path("/proc/meminfo").read_text())
    avail = mem.get("MemAvailable", 0)
    cores = os.cpu_count() or 1
    ok = avail >= 1024**3
    return Capability("resources", ok, f"{cores} cores, {avail / 1024**3:.1f} GiB available",
                      fix="" if ok else "the twin needs at least 1 GiB of free memory")


def probe_wakeups() -> Capability:
    """Informational: how punctual this machine is (see twin.wakeup). Never 'missing': a noisy
    machine still runs the twin, but its sub-millisecond delay tails then show the machine."""
    from twin.measure.wakeup import describe, survey
    s = survey(2.0)
    paused = s["cpus"] > 1 and s["all_cpus_stalled"]
    note = "; the VM is paused now and then: delay tails will show it" if paused else ""
    return Capability("timer wake-ups", True, describe(s) + note)


def probe_kernel() -> Capability:
    return Capability("kernel", True, platform.release())


def probe_root() -> Capability:
    ok = os.geteuid() == 0
    return Capability("root", ok, "yes" if ok else "no", fix="" if ok else "run as root (sudo)")


PROBES: list[Callable[[], Capability]] = [
    probe_root,
    probe_kernel,
    probe_docker,
    probe_ovs,
    probe_htb,
    probe_netem,
    probe_delayline,
    lambda: probe_tool("mnexec", "run 'make setup' (apt-get install mininet)"),
    lambda: probe_tool("iperf3", "run 'make setup' (apt-get install iperf3)"),
    lambda: probe_tool("ethtool", "run 'make setup' (apt-get install ethtool)"),
    lambda: probe_tool("nsenter", "apt-get install util-linux"),
    probe_osken,
    probe_image,
    probe_resources,
    probe_wakeups,
]


def check_all() -> list[Capability]:
    return [probe() for probe in PROBES]
