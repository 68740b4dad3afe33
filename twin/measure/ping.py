"""ping run from the host inside a worker's network namespace, its per-packet RTTs, and their
median read as the rounded values they are.
"""

from __future__ import annotations

import re
import statistics
import subprocess
from collections.abc import Sequence

from twin.emulation.state import WorkerInfo
from twin.host.processes import ns_prefix


def parse_ping_rtts(text: str) -> list[float]:
    """Per-packet RTTs (ms) from ping output lines '... time=20.4 ms'."""
    return [float(m) for m in re.findall(r"time=([0-9.]+) ms", text)]


def resolution_ms(rtt_ms: float) -> float:
    """The step iputils ping prints a round trip in: microseconds below 1 ms, three significant
    digits above (time=13.4 ms, time=107 ms), each value rounded to the nearest step."""
    if rtt_ms >= 99.95:
        return 1.0
    if rtt_ms >= 9.995:
        return 0.1
    if rtt_ms >= 1.0:
        return 0.01
    return 0.001


def median_rtt_ms(rtts: Sequence[float]) -> float:
    """The median of ping's round trips, interpolated within the step they were printed in
    (``statistics.median_grouped``).

    Why: a 13.4 ms path's round trips come back as 13.3, 13.4 or 13.5; their plain median is
    one of those whatever the round trips' own median between them, up to 0.05 ms off, a
    quarter of the 0.2 ms calibration holds a path to, and under time dilation (x8: 107 ms,
    printed in whole milliseconds) more than the target itself. Raises ValueError on none."""
    if not rtts:
        raise ValueError("no round trips")
    return statistics.median_grouped(rtts, interval=resolution_ms(statistics.median(rtts)))


def ping(src: WorkerInfo, dst_ip: str, count: int, interval: float = 0.02) -> list[float]:
    proc = subprocess.run(ns_prefix(src.pid) + ["ping", "-n", "-c",
                                                str(count), "-i", f"{interval}", dst_ip],
                          capture_output=True, text=True, timeout=count * interval + 30)
    return parse_ping_rtts(proc.stdout)

