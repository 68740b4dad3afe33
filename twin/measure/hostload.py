"""Whether the host was the bottleneck while a measurement ran.

Every container, switch pass, delay line and rank of the twin runs on the one machine, so a
result measured while the machine had no time left measures the machine, not the fabric. Three
witnesses, each of which the row carries and any of which flags it "host-bound" (in its CSV row
and in the printed summary):

- the CPUs: ``HostLoad`` samples the machine's CPU time (``/proc/stat``: all CPUs, every state
  but idle and iowait counted as busy) every ``interval_s``; a sample at or above ``SATURATED``
  busy is a moment without headroom, and more than ``HOST_BOUND_SHARE`` of them flags the run;
- the delay lines: each counts how late it released every frame (delayline.c); given the run's
  delay lines, ``HostLoad`` reads their counters before and after, and more than
  ``LINE_LATE_BOUND`` of the frames released ``LATE_THRESHOLD_US`` or more late flags the run
  (that lateness is added to every delay the run measured);
- the generator: every rank reports the CPU time its process used over its timed region; a rank
  that used ``GENERATOR_BOUND`` of a core or more was the limit of its own traffic, not the
  network (``with_generator``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Optional, Sequence

from twin.emulation import delayline
from twin.emulation.delayline import DelayLineSpec
from twin.emulation.state import TwinState
from twin.errors import TwinError

SATURATED = 0.95  # busy share of all CPUs over one sample
HOST_BOUND_SHARE = 0.10  # of the samples: more than this and the row is flagged
INTERVAL_S = 0.2
LINE_LATE_BOUND = 0.01  # of the delay lines' frames released LATE_THRESHOLD_US or more late
GENERATOR_BOUND = 0.9  # of one core, used by the busiest rank's process over its timed region


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
    """What the witnesses saw. ``line_*`` are None where the run had no delay line (netem
    links: the kernel does not count netem's lateness), ``generator_cpu_share`` None until
    the ranks' own figures are added (``with_generator``)."""

    samples: int
    saturated_share: float
    median_busy: float
    line_frames: int = 0
    line_late_share: Optional[float] = None
    line_late_p99_ms: Optional[float] = None
    generator_cpu_share: Optional[float] = None

    @property
    def reasons(self) -> list[str]:
        """Why the run is host-bound, one phrase per witness that says so (empty: it is not)."""
        out = []
        if self.saturated_share > HOST_BOUND_SHARE:
            out.append(f"CPU >= {SATURATED:.0%} for {self.saturated_share:.0%} of the run")
        if self.line_late_share is not None and self.line_late_share > LINE_LATE_BOUND:
            out.append(f"delay lines released {self.line_late_share:.1%} of frames >= "
                       f"{delayline.LATE_THRESHOLD_US / 1000:g} ms late")
        if self.generator_cpu_share is not None and self.generator_cpu_share >= GENERATOR_BOUND:
            out.append(f"busiest rank used {self.generator_cpu_share:.0%} of a core")
        return out

    @property
    def host_bound(self) -> bool:
        return bool(self.reasons)

    def describe(self) -> str:
        """One line for the printed summary: the verdict, then every witness's figure."""
        if not self.samples:
            return "host load not sampled"
        seen = [f"CPU >= {SATURATED:.0%} for {self.saturated_share:.0%} of the run "
                f"(median {self.median_busy:.0%})"]
        if self.line_late_share is not None:
            seen.append(f"delay lines {self.line_late_share:.1%} of {self.line_frames} frames "
                        f">= {delayline.LATE_THRESHOLD_US / 1000:g} ms late "
                        f"(p99 {self.line_late_p99_ms:g} ms)")
        if self.generator_cpu_share is not None:
            seen.append(f"busiest rank {self.generator_cpu_share:.0%} of a core")
        if self.host_bound:
            return "host-bound: " + "; ".join(self.reasons)
        return "host had headroom: " + "; ".join(seen)

    def with_generator(self, cpu_shares: Sequence[float]) -> "LoadSummary":
        """This summary with the ranks' CPU shares (CPU seconds over wall seconds of each
        rank's timed region) added: the busiest one counts."""
        if not cpu_shares:
            return self
        return replace(self, generator_cpu_share=round(max(cpu_shares), 3))


HOST_FIELDS = ("host_cpu_saturated_share", "host_bound", "line_late_share", "line_late_p99_ms",
               "generator_cpu_share", "host")  # the columns every measured row carries


def host_columns(summary: LoadSummary) -> dict:
    """A row's host columns (HOST_FIELDS) from what the witnesses saw."""
    return {"host_cpu_saturated_share": round(summary.saturated_share, 3),
            "host_bound": summary.host_bound, "line_late_share": summary.line_late_share,
            "line_late_p99_ms": summary.line_late_p99_ms,
            "generator_cpu_share": summary.generator_cpu_share, "host": summary.describe()}


def verdict(rows: Sequence[object]) -> str:
    """One line over several rows (objects or CSV dicts with host_bound and host): how many were
    host-bound and why, or that every one had headroom."""
    def get(r: object, k: str) -> object:
        return r.get(k) if isinstance(r, dict) else getattr(r, k, None)
    bound = [r for r in rows if get(r, "host_bound") in (True, "True")]
    # rows of a CSV older than the host columns say nothing either way: never "headroom"
    unknown = [r for r in rows if get(r, "host_bound") not in (True, False, "True", "False")]
    if len(unknown) == len(rows):
        return f"not recorded in any of the {len(rows)} rows"
    missing = f"; not recorded in {len(unknown)} of {len(rows)} rows" if unknown else ""
    if bound:
        return f"{len(bound)} of {len(rows)} rows host-bound ({get(bound[0], 'host')}){missing}"
    known = len(rows) - len(unknown)
    notes = [str(get(r, "host")) for r in rows if get(r, "host")]
    return (f"the host had headroom in all {known} rows that record it" if unknown
            else f"the host had headroom in all {known} rows") \
        + (f" (last: {notes[-1]})" if notes else "") + missing


def summarize(shares: list[float], line_before: Optional[dict] = None,
              line_after: Optional[dict] = None) -> LoadSummary:
    """The CPU samples' summary; with the delay lines' pooled counters before and after, their
    lateness too."""
    lines: dict = {}
    if line_before is not None and line_after is not None and line_after.get("late_hist_pow2_us"):
        late = delayline.lateness(line_before, line_after)
        lines = {"line_frames": late["frames"], "line_late_share": round(late["late_share"], 5),
                 "line_late_p99_ms": late["late_p99_ms"]}
    if not shares:
        return LoadSummary(0, 0.0, 0.0, **lines)
    ordered = sorted(shares)
    return LoadSummary(len(shares), sum(s >= SATURATED for s in shares) / len(shares),
                       ordered[len(ordered) // 2], **lines)


def pooled_stats(lines: Sequence[DelayLineSpec]) -> dict:
    """Every line's lateness histogram added up (one histogram for the whole fabric)."""
    hist: list[int] = []
    for spec in lines:
        try:
            got = delayline.read_stats(spec.params_file, spec.pid).get("late_hist_pow2_us") or []
        except TwinError:  # a line that does not answer: the fabric's lateness is unknown
            return {}
        hist = [a + b for a, b in zip(hist, got)] if hist else list(got)
    return {"late_hist_pow2_us": hist} if hist else {}


class HostLoad:
    """``with HostLoad(lines) as load: ...`` then ``load.summary``: the CPUs sampled on a daemon
    thread, the delay lines ``lines`` read on entry and on exit."""

    def __init__(self, lines: Sequence[DelayLineSpec] = (), interval_s: float = INTERVAL_S,
                 stat: Path = Path("/proc/stat")) -> None:
        self.interval_s, self.stat = interval_s, stat
        self.lines = list(lines)
        self.shares: list[float] = []
        self.line_before: Optional[dict] = None
        self.line_after: Optional[dict] = None
        self.stamps: list[float] = []  # wall-clock end of each sample (the containers share the clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="host-load")

    @classmethod
    def of(cls, state: TwinState) -> "HostLoad":
        """Watching the running twin's CPUs and every delay line of its long-haul links."""
        return cls([w.delayline for w in state.wan if w.delayline])

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
        if self.lines:
            self.line_before = pooled_stats(self.lines)
        self._thread.start()
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._stop.set()
        self._thread.join()
        if self.lines and exc_type is None:
            self.line_after = pooled_stats(self.lines)

    @property
    def summary(self) -> LoadSummary:
        return summarize(list(self.shares), self.line_before, self.line_after)

    def summary_between(self, start: float, end: float) -> LoadSummary:
        """The samples that ended within [start, end] (wall clock, ``time.time()``): a program
        that reports when its measured part ran is judged on that part, not on its start-up
        (importing torch in every rank at once saturates the host for seconds)."""
        return summarize([s for s, t in zip(list(self.shares), list(self.stamps)) if start <= t <= end])

