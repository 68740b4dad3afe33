"""Start the daemons the twin needs (Docker engine, Open vSwitch), idempotently.

Machines differ: a Vagrant VM has systemd, CI containers and these dev machines do not. Either
way the result is the same: both daemons answer, or one line says which one did not and where
its log is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from twin.errors import TwinError
from twin.host.engine import engine_version

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
DOCKERD_LOG = Path("/var/log/twin-dockerd.log")


def _ok(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def docker_answers() -> bool:
    """Whether the engine answers now (see engine.engine_version: safe while it is down)."""
    try:
        engine_version()
    except TwinError:
        return False
    return True


def ovs_answers() -> bool:
    return _ok(["ovs-vsctl", "--timeout=5", "show"]) and _ok(
        ["ovs-appctl", "--timeout=5", "version"])


def _wait(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def ensure_docker() -> str:
    """Return how the engine was found ('running', 'started'); raise TwinError if it won't come up."""
    if docker_answers():
        return "running"
    if not shutil.which("dockerd"):
        raise TwinError("dockerd is not installed; run 'make setup' (apt-get install docker.io)")
    if has_systemd():
        subprocess.run(["systemctl", "start", "docker"], capture_output=True)
    else:
        # A stale pid file from a killed daemon stops dockerd from starting.
        pidfile = Path("/var/run/docker.pid")
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text().strip() or 0), 0)
            except (ValueError, ProcessLookupError, PermissionError):
                pidfile.unlink(missing_ok=True)
        log = open(DOCKERD_LOG, "ab")
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         start_new_session=True)
        log.close()
    if not _wait(docker_answers, 60):
        raise TwinError(f"dockerd did not come up within 60 s; see {DOCKERD_LOG} "
                        "(or 'journalctl -u docker')")
    return "started"


# OVS's userspace datapath transmits on every port through one shared AF_PACKET socket, whose
# send buffer also counts the bytes waiting in the ports' tc queues. With the default 208 KB
# it runs out as soon as one shaped link backs up, and OVS then drops packets for *every* port,
# silently and before tc can classify them: isolation and shaping both fail. The buffer is sized
# when ovs-vswitchd opens the socket, so this must be set before it starts.
# Likewise each port's receive socket: with the default 208 KB it overflows whenever
# ovs-vswitchd is busy for a millisecond (4 x 100 Mbit/s flows on 2 cores did it), and those drops
# are counted nowhere (not in OVS, tc or softnet stats); TCP saw thousands of retransmits per
# 10 s. 8 MB per socket removed them (measured: 2,800-4,000 -> 0-120 retransmits).
SOCKET_SYSCTLS = {"net.core.wmem_default": 33554432, "net.core.wmem_max": 33554432,
                  "net.core.rmem_default": 8388608, "net.core.rmem_max": 67108864}


def tune_socket_buffers() -> bool:
    """Raise the socket buffer defaults; True if anything had to change."""
    changed = False
    for key, want in SOCKET_SYSCTLS.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        try:
            if int(path.read_text().split()[0]) < want:
                path.write_text(str(want))
                changed = True
        except (OSError, ValueError):
            pass
    return changed


def twin_bridges_exist() -> bool:
    proc = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True)
    return bool(proc.stdout.strip())


def ensure_ovs() -> str:
    """Return 'running', 'restarted' or 'started'; raise TwinError if OVS won't answer."""
    changed = tune_socket_buffers()
    if ovs_answers():
        if not changed or twin_bridges_exist():
            return "running"
        # restart so ovs-vswitchd's shared transmit socket gets the bigger buffer
        if has_systemd():
            subprocess.run(["systemctl", "restart", "openvswitch-switch"], capture_output=True)
        else:
            subprocess.run([OVS_CTL, "restart", "--system-id=random"], capture_output=True)
        if not _wait(ovs_answers, 30):
            raise TwinError("Open vSwitch did not come back after a restart; see "
                            "/var/log/openvswitch/ovs-vswitchd.log")
        return "restarted (socket buffers raised)"
    if has_systemd():
        subprocess.run(["systemctl", "start", "openvswitch-switch"], capture_output=True)
    elif Path(OVS_CTL).exists():
        subprocess.run([OVS_CTL, "start", "--system-id=random"], capture_output=True)
    else:
        raise TwinError("Open vSwitch is not installed; run 'make setup' "
                        "(apt-get install openvswitch-switch)")
    if not _wait(ovs_answers, 30):
        raise TwinError("Open vSwitch did not come up within 30 s; see "
                        "/var/log/openvswitch/ovs-vswitchd.log")
    return "started"
