"""How late this machine wakes a real-time thread: the floor under every delay the twin measures.

The delay line and the probes' timestamps are only as punctual as the kernel and, on a VM, the
host: a thread that sleeps 1 ms and wakes 3 ms late delays every frame due in between. Measured
here per CPU, at once on all of them, because a stall that hits every CPU at the same moment is
the VM not running (nothing inside it can help), while a stall on one CPU is contention inside.
``twin doctor`` and ``twin experiment determinism`` print the survey.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection

from traffic.probe import percentile
from twin.errors import TwinError

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


def _measure_into(conn: Connection, cpu: int, seconds: float) -> None:
    """A survey's child: one CPU's measurement back through the pipe. The objects inherited from
    the parent leave the garbage collector's view, so a collection cannot scan them mid-sleep;
    Ctrl-C is the parent's to handle (it ends its children)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()
    with conn:
        conn.send(measure(cpu, seconds))


def survey(seconds: float = 2.0) -> dict:
    """Every CPU at once, each in its own forked process (threads of one Python process would
    serialize on its interpreter lock)."""
    cpus = sorted(os.sched_getaffinity(0))
    ctx = multiprocessing.get_context("fork")
    children = []
    for c in cpus:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_measure_into, args=(send, c, seconds), daemon=True)
        proc.start()
        send.close()  # the child holds the sending end; EOF here if it dies before sending
        children.append((c, receive, proc))
    results = []
    try:
        for c, receive, proc in children:
            if not receive.poll(seconds + 30):
                raise TwinError(f"wake-up survey: CPU {c} sent no result within {seconds + 30:g} s")
            try:
                results.append(receive.recv())
            except EOFError:
                proc.join()
                raise TwinError(f"wake-up survey: the process measuring CPU {c} exited "
                                f"({proc.exitcode}) without a result") from None
    finally:
        for _, receive, proc in children:
            receive.close()
            if proc.is_alive():
                proc.kill()
            proc.join()
    return {"cpus": len(cpus), "p999_ms": max(r["p999_ms"] for r in results),
            "max_ms": max(r["max_ms"] for r in results),
            "stalls": sum(len(r["stalls"]) for r in results),
            "all_cpus_stalled": simultaneous([r["stalls"] for r in results]),
            "seconds": seconds}


def describe(s: dict) -> str:
    return (f"1 ms real-time sleeps on {s['cpus']} CPUs for {s['seconds']:g} s: p99.9 "
            f"{s['p999_ms']:.2f} ms late, max {s['max_ms']:.1f} ms; {s['stalls']} wake-ups "
            f">= {LATE_MS} ms late, {s['all_cpus_stalled']} on every CPU at once")
