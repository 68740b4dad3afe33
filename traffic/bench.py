"""One rank of a collective benchmark, run inside a worker container (like an nccl-tests binary).

  python3 -m traffic.bench --rank 0 --ranks '[{"rank":0,"ip":"10.1.0.1","site":"a"},...]'
      --op allreduce --algo ring --sizes 1048576,4194304 --iters 5 --warmup 1 [--no-check]

Prints one JSON line per size: {"size", "count", "times_us", "wrong", "cpu_s"} (cpu_s: the
process's CPU time over the timed iterations, all threads); on failure one JSON line
{"error": "..."} naming rank, peer and phase, and exit status 1. Fill and verification stay
outside the timed region; every iteration starts from freshly filled buffers after a barrier.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from traffic import collectives as C
from traffic.comm import Comm, _split, add_rank_arguments, run_rank

DTYPE = np.float32


def fill(op: str, buf: np.ndarray, rank: int, p: int, root: int = 0) -> None:
    idx = np.arange(len(buf), dtype=np.int64)
    if op in ("allreduce", "reducescatter"):
        buf[:] = (rank + 1) + (idx % 7)
    elif op == "allgather":
        buf[:] = 0
        a, b = _split(len(buf), p)[rank]
        buf[a:b] = rank + 1
    elif op == "broadcast":
        buf[:] = (idx % 251) if rank == root else 0
    elif op == "alltoall":
        buf[:] = -1
        for j, (a, b) in enumerate(C.equal_blocks(len(buf), p)):
            buf[a:b] = rank * 1000 + j


def expected(op: str, n: int, rank: int, p: int) -> tuple[slice, np.ndarray]:
    """(the part of the result buffer to check, its expected values)."""
    idx = np.arange(n, dtype=np.int64)
    if op == "allreduce":
        return slice(0, n), (p * (p + 1) // 2 + p * (idx % 7)).astype(DTYPE)
    if op == "reducescatter":
        a, b = _split(n, p)[rank]
        return slice(a, b), (p * (p + 1) // 2 + p * (idx[a:b] % 7)).astype(DTYPE)
    if op == "allgather":
        out = np.empty(n, dtype=DTYPE)
        for j, (a, b) in enumerate(_split(n, p)):
            out[a:b] = j + 1
        return slice(0, n), out
    if op == "broadcast":
        return slice(0, n), (idx % 251).astype(DTYPE)
    if op == "alltoall":
        out = np.full(n, -1, dtype=DTYPE)
        for j, (a, b) in enumerate(C.equal_blocks(n, p)):
            out[a:b] = j * 1000 + rank
        return slice(0, n), out
    raise ValueError(op)


def run_op(comm: Comm, op: str, algo: str, buf: np.ndarray, out: np.ndarray, check: bool) -> np.ndarray:
    """Run one collective; returns the buffer holding the result."""
    if op == "allreduce":
        C.allreduce(comm, buf, algo, reduce=check)
        return buf
    if op == "reducescatter":
        C.reduce_scatter(comm, buf, reduce=check)
        return buf
    if op == "allgather":
        C.all_gather(comm, buf)
        return buf
    if op == "broadcast":
        C.broadcast(comm, buf)
        return buf
    if op == "alltoall":
        C.all_to_all(comm, buf, out)
        return out
    raise ValueError(f"unknown collective {op!r} (use {', '.join(C.OPS)})")


def bench_size(comm: Comm, op: str, algo: str, size: int, iters: int, warmup: int,
               check: bool) -> dict:
    count = max(1, size // np.dtype(DTYPE).itemsize)
    buf = np.empty(count, dtype=DTYPE)
    out = np.empty(count, dtype=DTYPE) if op == "alltoall" else buf
    times, wrong, cpu = [], 0, 0.0
    for it in range(warmup + iters):
        if check or it == 0:
            fill(op, buf, comm.rank, comm.size)
        comm.barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_op(comm, op, algo, buf, out, check)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if it >= warmup:
            times.append(dt * 1e6)
            cpu += dc
            if check:
                part, want = expected(op, count, comm.rank, comm.size)
                wrong += int(np.count_nonzero(result[part] != want))
    return {"size": count * buf.itemsize, "count": count, "times_us": times,
            "wrong": wrong if check else -1, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="traffic.bench")
    add_rank_arguments(ap, port=29500, timeout=30.0)
    ap.add_argument("--op", default="allreduce", choices=C.OPS)
    ap.add_argument("--algo", default="ring", choices=C.ALLREDUCE_ALGOS)
    ap.add_argument("--sizes", required=True, help="comma-separated byte counts")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-check", action="store_true", help="move bytes only (no fill/reduce/verify)")
    a = ap.parse_args(argv)

    def body(comm: Comm) -> None:
        for size in (int(s) for s in a.sizes.split(",")):
            res = bench_size(comm, a.op, a.algo, size, a.iters, a.warmup, not a.no_check)
            print(json.dumps(res), flush=True)
    return run_rank(a, body)

if __name__ == "__main__":
    sys.exit(main())
