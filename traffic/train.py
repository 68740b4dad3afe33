"""Replay training iterations on one rank: compute stood in by timed waits, gradients all-reduced
in buckets during the backward pass over real TCP, like DDP.

Schedule (JSON): {"forward_s", "backward_s", "optimizer_s", "buckets": [bytes...], "overlap": bool,
"algo": "ring|hd|tree|hier", "iterations": n, "check": bool}. Buckets are all-reduced in the order
the backward pass produces them (uniform production rate); with overlap a communication thread
starts each as soon as it is ready, without overlap all start after the backward pass.

Prints one JSON line per iteration: compute_s, comm_s (sum of all-reduce durations), iteration_s,
exposed_s (iteration - compute) and wrong (elements that did not reduce correctly).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time

import numpy as np

from traffic import collectives as C
from traffic.bench import DTYPE, expected, fill
from traffic.comm import Comm, add_rank_arguments, concurrently, print_iterations, run_rank


def _sleep_until(t: float) -> None:
    while (d := t - time.perf_counter()) > 0:
        time.sleep(min(d, 0.01) if d > 0.002 else 0)


def run_iteration(comm: Comm, sched: dict, bufs: list[np.ndarray]) -> dict:
    algo, check, overlap = sched["algo"], sched.get("check", False), sched.get("overlap", True)
    total = sum(len(b) for b in bufs) or 1
    if check:
        for b in bufs:
            fill("allreduce", b, comm.rank, comm.size)
    comm.barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    ready: queue.Queue = queue.Queue()
    durations: list[float] = []
    bwd_start = t0 + sched["forward_s"]

    def communicate() -> None:
        while (i := ready.get()) is not None:
            s = time.perf_counter()
            C.allreduce(comm, bufs[i], algo, reduce=check)
            durations.append(time.perf_counter() - s)

    def forward_backward() -> None:
        """Forward, then backward producing the buckets; the end mark stops communicate()."""
        nonlocal bwd_start
        try:
            _sleep_until(t0 + sched["forward_s"])
            bwd_start = time.perf_counter()
            produced = 0
            fractions = sched.get("ready")  # the schedule's ready points, else uniform
            for i, b in enumerate(bufs):
                produced += len(b)
                frac = fractions[i] if fractions else produced / total
                _sleep_until(bwd_start + sched["backward_s"] * frac)
                if overlap:
                    ready.put(i)
            if not overlap:
                for i in range(len(bufs)):
                    ready.put(i)
        finally:
            ready.put(None)

    concurrently(forward_backward, communicate)
    after_comm = time.perf_counter()
    _sleep_until(max(after_comm, bwd_start + sched["backward_s"]) + sched["optimizer_s"])
    t1, c1 = time.perf_counter(), time.process_time()
    wrong = 0
    if check:
        for b in bufs:
            _, want = expected("allreduce", len(b), comm.rank, comm.size)
            wrong += int(np.count_nonzero(b != want))
    compute = sched["forward_s"] + sched["backward_s"] + sched["optimizer_s"]
    return {"iteration_s": t1 - t0, "compute_s": compute, "comm_s": sum(durations),
            "exposed_s": (t1 - t0) - compute, "wrong": wrong if check else -1, "cpu_s": c1 - c0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="traffic.train")
    add_rank_arguments(ap, port=29600, timeout=60.0)
    ap.add_argument("--schedule", required=True, help="JSON schedule (see module doc)")
    a = ap.parse_args(argv)
    sched = json.loads(a.schedule)

    def body(comm: Comm) -> None:
        bufs = [np.zeros(max(1, int(b) // 4), dtype=DTYPE) for b in sched["buckets"]]
        print_iterations(sched, lambda: run_iteration(comm, sched, bufs))
    return run_rank(a, body)

if __name__ == "__main__":
    sys.exit(main())
