"""The workers' TCP: which congestion control they run, made explicit.

Network namespaces inherit the machine's default congestion control (bbr on some of these
machines, cubic on a stock Ubuntu or Debian VM), so without this the host's choice would leak
into every result. A namespace may only pick one that the machine allows unprivileged
(net.ipv4.tcp_allowed_congestion_control), so the twin adds the topology's choice there before
any worker starts.
"""

from __future__ import annotations

from pathlib import Path

from twin.errors import TwinError

SYSCTL = Path("/proc/sys/net/ipv4")


def _read(name: str) -> list[str]:
    try:
        return (SYSCTL / name).read_text().split()
    except OSError:
        return []


def allow_congestion_control(name: str) -> None:
    """Make ``name`` selectable inside worker namespaces, or say in one line why it cannot be."""
    available = _read("tcp_available_congestion_control")
    if name not in available:
        raise TwinError(f"TCP congestion control {name!r} is not in this kernel (it offers "
                        f"{', '.join(available) or 'none'}); set congestion_control in the topology")
    allowed = _read("tcp_allowed_congestion_control")
    if name in allowed:
        return
    try:
        (SYSCTL / "tcp_allowed_congestion_control").write_text(" ".join([*allowed, name]))
    except OSError as exc:
        raise TwinError(f"cannot allow TCP congestion control {name!r} in worker namespaces "
                        f"(net.ipv4.tcp_allowed_congestion_control): {exc.strerror}") from None


def worker_tcp_batch(intf: str, ip: str, congestion_control: str, rto_min_s: float,
                     default_rto_min_s: float) -> tuple[list[str], str]:
    """(sysctl argv, `ip -batch` text) that give one worker its congestion control and, when time
    is dilated, its route's minimum retransmission timeout scaled (Linux's 200 ms x K): the
    route to the whole fabric (10.0.0.0/8, the one the kernel made for the worker's address)."""
    sysctl = ["sysctl", "-q", "-w", f"net.ipv4.tcp_congestion_control={congestion_control}"]
    route = ""
    if rto_min_s != default_rto_min_s:
        route = (f"route change 10.0.0.0/8 dev {intf} proto kernel scope link src {ip} "
                 f"rto_min {rto_min_s * 1e3:.0f}ms\n")
    return sysctl, route
