"""ping run from the host inside a worker's network namespace, and its per-packet RTTs.
"""

from __future__ import annotations

import re
import subprocess

from twin.emulation.state import WorkerInfo
from twin.host.processes import ns_prefix


def parse_ping_rtts(text: str) -> list[float]:
    """Per-packet RTTs (ms) from ping output lines '... time=20.4 ms'."""
    return [float(m) for m in re.findall(r"time=([0-9.]+) ms", text)]


def ping(src: WorkerInfo, dst_ip: str, count: int, interval: float = 0.02) -> list[float]:
    proc = subprocess.run(ns_prefix(src.pid) + ["ping", "-n", "-c",
                                                str(count), "-i", f"{interval}", dst_ip],
                          capture_output=True, text=True, timeout=count * interval + 30)
    return parse_ping_rtts(proc.stdout)

