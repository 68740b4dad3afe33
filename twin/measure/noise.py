"""Did the reserved probe miss its delay target because of the network or because of the machine?

Every probe row of the determinism experiment carries the delay line's own lateness during the
probe (``line_late_share``: frames it released >= 0.5 ms after they were due). Grouping the
repeats of one or more runs by it separates the two: if the probe meets its target whenever the
emulator was on time, the misses are the machine's.

  twin experiment noise results/experiments/runs/determinism-fntf-4site-*.csv [--target-ms 1]
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from twin.errors import InputError
from twin.spec.loading import read_table

LATE_LINE_SHARE = 0.006  # at and above it no repeat of five runs met the 1 ms target (0 of 16)
BANDS = ((0.0, 0.003), (0.003, LATE_LINE_SHARE), (LATE_LINE_SHARE, 1.0))  # share of frames late


@dataclass
class NoiseBand:
    controller: str
    line_late_share_from: float
    line_late_share_to: float
    repeats: int
    within_target: int
    target_ms: float
    p99_over_propagation_median_ms: float
    p99_over_propagation_max_ms: float
    phases: str  # which phases the repeats came from, with counts


def bands(rows: list[dict], controller: str = "detpath", target_ms: float = 1.0) -> list[NoiseBand]:
    """Probe rows of ``controller`` that carry line lateness, grouped by it."""
    probes = [r for r in rows if r.get("controller") == controller
              and str(r.get("metric", "")).startswith("probe") and r.get("line_late_share") not in (None, "")]
    out = []
    for lo, hi in BANDS:
        mine = [r for r in probes if lo <= float(r["line_late_share"]) < hi]
        if not mine:
            continue
        excess = [float(r["owd_p99_ms"]) - float(r["propagation_ms"]) for r in mine]
        phases: dict[str, int] = {}
        for r in mine:
            phases[r["phase"]] = phases.get(r["phase"], 0) + 1
        out.append(NoiseBand(controller, lo, hi, len(mine), sum(e <= target_ms for e in excess),
                             target_ms, round(statistics.median(excess), 3), round(max(excess), 3),
                             ", ".join(f"{k} {v}" for k, v in sorted(phases.items()))))
    return out


def machine_warning(line_late_shares: list, csv_path: Path) -> str:
    """One line for the end of an experiment if the emulator was late in some of its probe runs
    (``None`` entries: rows without a delay line), else ''."""
    shares = [x for x in line_late_shares if x is not None]
    late = [x for x in shares if x >= LATE_LINE_SHARE]
    if not late:
        return ""
    return (f"in {len(late)} of {len(shares)} probe runs the delay line released >= "
            f"{LATE_LINE_SHARE:.1%} of its frames 0.5 ms or more late; their delay tails are the "
            f"machine's (twin experiment noise {csv_path})")


# What bands() reads of a determinism CSV; files written before the delay line reported its
# lateness have no line_late_share column (they give no band), those after have all of LATENESS.
COLUMNS = ("controller", "metric")
LATENESS = ("line_late_share", "phase", "owd_p99_ms", "propagation_ms")


def read_rows(paths: list[Path]) -> list[dict]:
    """The rows of every determinism CSV, in order; a file that cannot be read, is no
    determinism CSV or has a probe row whose lateness or delays are not numbers is one line."""
    rows: list[dict] = []
    for path in paths:
        table = read_table(path, COLUMNS, "a determinism CSV")
        if "line_late_share" in table.header:
            missing = [c for c in LATENESS if c not in table.header]
            if missing:
                raise InputError([f"{path}: line 1: not a determinism CSV: no column "
                                  f"{', '.join(missing)}"])
            table.require_numbers(LATENESS[:1] + LATENESS[2:], _lateness_probe)
        rows += table.rows
    return rows


def _lateness_probe(r: dict) -> bool:
    """A probe row with the line's lateness: the rows bands() computes with."""
    return r["metric"].startswith("probe") and r["line_late_share"] != ""


def describe(b: NoiseBand) -> str:
    return (f"line late {b.line_late_share_from:.1%}-{b.line_late_share_to:.1%}: {b.repeats} "
            f"repeats, {b.within_target} with p99 within {b.target_ms:g} ms of propagation; "
            f"excess median {b.p99_over_propagation_median_ms:+.2f} ms, max "
            f"{b.p99_over_propagation_max_ms:+.2f} ms ({b.phases})")
