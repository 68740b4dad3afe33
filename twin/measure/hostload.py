"""Whether the host was the bottleneck while a measurement ran.

Every container, switch pass, delay line and rank of the twin runs on the one machine, so a
result measured while its CPUs had no time left measures the machine, not the fabric. A
``HostLoad`` samples the machine's CPU time (``/proc/stat``: all CPUs, every state but idle and
iowait counted as busy) every ``interval_s`` while a measurement runs; a sample at or above
``SATURATED`` busy is a moment without headroom. A run with more than ``HOST_BOUND_SHARE`` of
its samples saturated is flagged "host-bound" in its row and in the printed summary.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Optional

SATURATED = 0.95  # busy share of all CPUs over one sample
HOST_BOUND_SHARE = 0.10  # of the samples: more than this and the row is flagged
INTERVAL_S = 0.2


def cpu_times(stat: str) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from the text of /proc/stat."""
    fields = [int(x) for x in stat.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user and nice
    return total - idle, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> Optional[float]:
    """The busy share of all CPUs between two readings (None if no time passed)."""
    dt = after[1] - before[1]
    return None if dt <= 0 else (after[0] - before[0]) / dt


@dataclass(frozen=True)
class LoadSummary:
    """What a HostLoad saw: the share of samples without headroom and the median busy share."""

    samples: int
    saturated_share: float
    median_busy: float

    @property
    def host_bound(self) -> bool:
        return self.saturated_share > HOST_BOUND_SHARE

    def describe(self) -> str:
        if not self.samples:
            return "host load not sampled"
        text = (f"CPU >= {SATURATED:.0%} for {self.saturated_share:.0%} of the run "
                f"(median {self.median_busy:.0%})")
        return f"host-bound: {text}" if self.host_bound else f"host had headroom: {text}"


def summarize(shares: list[float]) -> LoadSummary:
    if not shares:
        return LoadSummary(0, 0.0, 0.0)
    ordered = sorted(shares)
    return LoadSummary(len(shares), sum(s >= SATURATED for s in shares) / len(shares),
                       ordered[len(ordered) // 2])


class HostLoad:
    """``with HostLoad() as load: ...`` then ``load.summary``: sampled on a daemon thread."""

    def __init__(self, interval_s: float = INTERVAL_S, stat: Path = Path("/proc/stat")) -> None:
        self.interval_s, self.stat = interval_s, stat
        self.shares: list[float] = []
        self.stamps: list[float] = []  # wall-clock end of each sample (the containers share the clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="host-load")

    def _read(self) -> tuple[int, int]:
        return cpu_times(self.stat.read_text())

    def _sample(self) -> None:
        last = self._read()
        while not self._stop.wait(self.interval_s):
            now = self._read()
            share = busy_share(last, now)
            if share is not None:
                self.shares.append(share)
                self.stamps.append(time.time())
            last = now

    def __enter__(self) -> "HostLoad":
        self._thread.start()
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def summary(self) -> LoadSummary:
        return summarize(list(self.shares))

    def summary_between(self, start: float, end: float) -> LoadSummary:
        """The samples that ended within [start, end] (wall clock, ``time.time()``): a program
        that reports when its measured part ran is judged on that part, not on its start-up
        (importing torch in every rank at once saturates the host for seconds)."""
        return summarize([s for s, t in zip(list(self.shares), list(self.stamps)) if start <= t <= end])

