"""One rank of a collective benchmark run by PyTorch's torch.distributed over gloo, inside a
worker container of the torch image (twin-torch): the real library beside the twin's own
generator (traffic.bench), measured the same way.

  python3 -m traffic.torch_bench --rank 0 --ranks '[{"rank":0,"ip":"10.1.0.1","site":"a"},...]'
      --op allreduce --sizes 1048576,4194304 --iters 5 --warmup 1 [--no-check]

Same options, output and timing as traffic.bench: one JSON line per size {"size", "count",
"times_us", "wrong", "cpu_s"}, or one {"error"} line and exit status 1; buffers filled and verified as
traffic.bench fills and verifies them, outside the timed region; every iteration starts after a
barrier. The collectives are torch.distributed's all_reduce, reduce_scatter_single
(reduce_scatter_tensor where torch has no such name), all_gather_single (all_gather_into_tensor),
broadcast and all_to_all_single; gloo picks its own algorithm (a pipelined ring for all-reduce)
and opens one connection per peer pair.

Gloo binds to the interface GLOO_SOCKET_IFNAME names, else to the one the host name resolves to,
which in a twin container can be another interface than the fabric's (and orders of magnitude
slower, gloo issue #335): this rank sets it to the interface holding its own address in the rank
list. torch is imported only here, and only in the torch image.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import struct
import sys
import time
from datetime import timedelta
from typing import Any

import numpy as np

from traffic.bench import DTYPE, expected, fill
from traffic.collectives import OPS
from traffic.comm import _split, add_rank_arguments, ranks_from_json

SIOCGIFADDR = 0x8915
SPLIT_OPS = ("reducescatter", "allgather", "alltoall")  # torch needs a count divisible by ranks


def interface_with(ip: str) -> str:
    """The name of this namespace's interface that holds IPv4 address ``ip``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on it
            if socket.inet_ntoa(answer[20:24]) == ip:
                return name
    raise ValueError(f"no interface holds this rank's address {ip}")


def element_count(op: str, size: int, p: int) -> int:
    """Elements of a buffer of ``size`` bytes; a multiple of the ranks where torch splits it."""
    count = max(1, size // np.dtype(DTYPE).itemsize)
    if op in SPLIT_OPS:
        count = max(p, count - count % p)
    return count


class TorchCollective:
    """One collective's buffers as numpy arrays (filled and checked by traffic.bench's rules)
    and the torch tensors sharing their memory."""

    def __init__(self, torch: Any, dist: Any, op: str, count: int, rank: int, p: int):
        self.dist, self.op, self.rank, self.p = dist, op, rank, p
        self.buf = np.empty(count, dtype=DTYPE)  # what fill() writes
        self.out = np.empty(count, dtype=DTYPE)  # where a result lands when it is not buf
        a, b = _split(count, p)[rank]
        self.part = self.out[: b - a] if op == "reducescatter" else self.out
        self.mine = np.empty(b - a, dtype=DTYPE)  # all-gather's input: this rank's chunk
        self.t_buf, self.t_out = torch.from_numpy(self.buf), torch.from_numpy(self.out)
        self.t_part, self.t_mine = torch.from_numpy(self.part), torch.from_numpy(self.mine)
        self.chunk = (a, b)
        self.reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        self.all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor

    def fill(self) -> None:
        fill(self.op, self.buf, self.rank, self.p)
        if self.op == "allgather":
            self.mine[:] = self.buf[self.chunk[0]:self.chunk[1]]

    def run(self) -> None:
        d = self.dist
        if self.op == "allreduce":
            d.all_reduce(self.t_buf)
        elif self.op == "reducescatter":
            self.reduce_scatter(self.t_part, self.t_buf)
        elif self.op == "allgather":
            self.all_gather(self.t_out, self.t_mine)
        elif self.op == "broadcast":
            d.broadcast(self.t_buf, src=0)
        elif self.op == "alltoall":
            d.all_to_all_single(self.t_out, self.t_buf)
        else:
            raise ValueError(f"unknown collective {self.op!r} (use {', '.join(OPS)})")

    def wrong(self) -> int:
        n = len(self.buf)
        part, want = expected(self.op, n, self.rank, self.p)
        if self.op in ("allreduce", "broadcast"):
            got = self.buf[part]
        elif self.op == "reducescatter":
            got = self.part
        else:
            got = self.out[part]
        return int(np.count_nonzero(got != want))


def bench_size(torch: Any, dist: Any, op: str, size: int, iters: int, warmup: int, check: bool,
               rank: int, p: int) -> dict:
    """As traffic.bench.bench_size: fill (each iteration when checking), barrier, time the
    collective, verify outside the timed region."""
    c = TorchCollective(torch, dist, op, element_count(op, size, p), rank, p)
    times, wrong, cpu = [], 0, 0.0
    for it in range(warmup + iters):
        if check or it == 0:
            c.fill()
        dist.barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        c.run()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if it >= warmup:
            times.append(dt * 1e6)
            cpu += dc
            if check:
                wrong += c.wrong()
    return {"size": len(c.buf) * c.buf.itemsize, "count": len(c.buf), "times_us": times,
            "wrong": wrong if check else -1, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="traffic.torch_bench")
    add_rank_arguments(ap, port=29500, timeout=30.0)
    ap.add_argument("--op", default="allreduce", choices=OPS)
    ap.add_argument("--sizes", required=True, help="comma-separated byte counts")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-check", action="store_true", help="fill once, verify nothing")
    a = ap.parse_args(argv)
    ranks = ranks_from_json(a.ranks)
    phase = "setup"
    try:
        if a.conns != 1:
            raise ValueError("gloo opens one connection per peer pair (--conns 1)")
        if a.sndbuf:
            raise ValueError("gloo sizes its own socket buffers (--sndbuf 0)")
        os.environ["GLOO_SOCKET_IFNAME"] = interface_with(ranks[a.rank].ip)
        try:
            import torch  # type: ignore[import-not-found]
            import torch.distributed as dist  # type: ignore[import-not-found]
        except ImportError:
            raise ValueError("torch is not installed in this worker's image: give the command "
                             "a topology file (it brings up its own twin on the torch image), or "
                             "bring the twin up with 'image: twin-torch:latest' (make image-torch)"
                             ) from None
        dist.init_process_group("gloo", init_method=f"tcp://{ranks[0].ip}:{a.port}",
                                rank=a.rank, world_size=len(ranks),
                                timeout=timedelta(seconds=a.timeout))
        for size in (int(s) for s in a.sizes.split(",")):
            phase = f"{a.op} of {size} B"
            res = bench_size(torch, dist, a.op, size, a.iters, a.warmup, not a.no_check,
                             a.rank, len(ranks))
            print(json.dumps(res), flush=True)
        dist.destroy_process_group()
    except (RuntimeError, ValueError, OSError) as exc:
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        print(json.dumps({"error": f"rank {a.rank}: {phase}: gloo: {text}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
