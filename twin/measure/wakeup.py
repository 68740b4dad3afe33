"""How late this machine wakes a real-time thread: the floor under every delay the twin measures.

The delay line and the probes' timestamps are only as punctual as the kernel and, on a VM, the
host: a thread that sleeps 1 ms and wakes 3 ms late delays every frame due in between. Measured
here per CPU, at once on all of them, because a stall that hits every CPU at the same moment is
the VM not running (nothing inside it can help), while a stall on one CPU is contention inside.

  python3 -m twin.measure.wakeup --cpu 0 --seconds 2      # one CPU's late wake-ups, JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from traffic.probe import percentile

LATE_MS = 0.5  # a wake-up at least this late is a stall


def measure(cpu: int, seconds: float) -> dict:
    """Sleep 1 ms at a time on ``cpu`` (SCHED_FIFO where allowed) and record every late wake-up."""
    os.sched_setaffinity(0, {cpu})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
    except (PermissionError, OSError):
        pass  # time-shared: the result then includes this process's own scheduling
    lates, stalls = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic_ns()
        time.sleep(0.001)
        late_ms = (time.monotonic_ns() - t0) / 1e6 - 1.0
        lates.append(late_ms)
        if late_ms >= LATE_MS:
            stalls.append((t0, t0 + int((1.0 + late_ms) * 1e6)))
    return {"cpu": cpu, "sleeps": len(lates), "p99_ms": percentile(lates, 99),
            "p999_ms": percentile(lates, 99.9), "max_ms": max(lates), "stalls": stalls}


def simultaneous(per_cpu: list[list[tuple[int, int]]]) -> int:
    """Stalls that every CPU was in at the same moment: intervals of the first CPU that overlap
    a stall of each other CPU."""
    if not per_cpu or any(not s for s in per_cpu):
        return 0
    return sum(1 for a0, a1 in per_cpu[0]
               if all(any(b0 < a1 and a0 < b1 for b0, b1 in other) for other in per_cpu[1:]))


def survey(seconds: float = 2.0) -> dict:
    """Every CPU at once, each in its own process (one Python process would serialize them)."""
    cpus = sorted(os.sched_getaffinity(0))
    procs = [subprocess.Popen([sys.executable, "-m", "twin.measure.wakeup", "--cpu", str(c), "--seconds",
                               str(seconds)], stdout=subprocess.PIPE, text=True) for c in cpus]
    results = [json.loads(p.communicate(timeout=seconds + 30)[0]) for p in procs]
    return {"cpus": len(cpus), "p999_ms": max(r["p999_ms"] for r in results),
            "max_ms": max(r["max_ms"] for r in results),
            "stalls": sum(len(r["stalls"]) for r in results),
            "all_cpus_stalled": simultaneous([[tuple(s) for s in r["stalls"]] for r in results]),
            "seconds": seconds}


def describe(s: dict) -> str:
    return (f"1 ms real-time sleeps on {s['cpus']} CPUs for {s['seconds']:g} s: p99.9 "
            f"{s['p999_ms']:.2f} ms late, max {s['max_ms']:.1f} ms; {s['stalls']} wake-ups "
            f">= {LATE_MS} ms late, {s['all_cpus_stalled']} on every CPU at once")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="twin.measure.wakeup")
    ap.add_argument("--cpu", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.cpu, a.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
