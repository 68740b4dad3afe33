"""A real data-parallel training job: an MLP on synthetic data, trained with PyTorch's
DistributedDataParallel over gloo on the CPU, one rank per worker of the torch image.

  twin run --topology topologies/ci-2site.yaml --torch -- python3 -m traffic.ddp \\
      --width 1024 --depth 4 --batch 64 --bucket-cap-mb 4 --iters 5

It is an unchanged torch.distributed program: the rendezvous comes from the environment
``twin run`` sets as torchrun would (MASTER_ADDR, RANK, WORLD_SIZE, GLOO_SOCKET_IFNAME). The
forward and backward passes are real, and so is DDP's gradient path: its buckets (of at most
``--bucket-cap-mb``, rebuilt after the first iteration in the order backward produced the
gradients), each all-reduced by gloo as soon as backward has filled it, overlapping the rest of
backward. ``loss.backward()`` returns once every bucket is reduced.

Iterations, each after a barrier (outside its time, as the twin's replay starts each):
``--warmup`` trained ones (the first builds DDP's buckets), ``--compute-iters`` with DDP's
gradient sync off (``no_sync``: forward and backward alone, the compute a replay of this job
needs; their gradients are thrown away, not stepped, so the replicas stay equal), then
``--iters`` timed training iterations. At the end each rank prints one JSON line: its times per
timed iteration (forward, backward with the all-reduces, optimizer, whole), when the timed
iterations began and ended (wall clock, for the host-load samples), the compute-only times,
DDP's bucket sizes, parameter count, the loss, and a SHA-256 of its parameters (DDP keeps the
replicas identical, so every rank's must be the same). On failure one ``{"error"}`` line and
exit status 1. torch is imported only here, and only in the torch image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import timedelta
from typing import Any


def build_model(torch: Any, width: int, depth: int) -> Any:
    """``depth`` Linear(width, width) layers with ReLU between: (width + 1) x width parameters
    each, so the gradient is sized by two numbers and backward produces it at an even rate."""
    layers: list[Any] = []
    for i in range(depth):
        layers.append(torch.nn.Linear(width, width))
        if i < depth - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def bucket_sizes(ddp: Any) -> list[int]:
    """DDP's gradient buckets in bytes, in the order it reduces them (the rebuilt buckets once
    the first iteration has run, else the initial ones)."""
    data = ddp._get_ddp_logging_data()  # the one place DDP reports its buckets
    text = str(data.get("rebuilt_bucket_sizes") or data.get("bucket_sizes") or "")
    return [int(x) for x in text.replace(",", " ").split()]


def parameter_digest(module: Any) -> str:
    """SHA-256 over every parameter's bytes, in order: equal on two ranks exactly when their
    replicas are bit for bit the same."""
    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(a: argparse.Namespace) -> dict:
    import torch  # type: ignore[import-not-found]
    import torch.distributed as dist  # type: ignore[import-not-found]
    from torch.nn.parallel import DistributedDataParallel  # type: ignore[import-not-found]

    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", timeout=timedelta(seconds=a.timeout))
    rank, size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(a.seed)  # DDP broadcasts rank 0's parameters anyway
    model = build_model(torch, a.width, a.depth)
    ddp = DistributedDataParallel(model, bucket_cap_mb=a.bucket_cap_mb)
    opt = torch.optim.SGD(ddp.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed * 1000 + rank + 1)  # each rank its own shard
    x = torch.randn(a.batch, a.width, generator=gen)
    y = torch.randn(a.batch, a.width, generator=gen)
    loss_fn = torch.nn.MSELoss()
    losses: list[float] = []

    def step(sync: bool) -> tuple[float, float, float]:
        """One iteration after a barrier: (forward, backward, optimizer) seconds. Without sync
        DDP reduces nothing and the gradient is dropped instead of stepped."""
        dist.barrier()
        t0 = time.perf_counter()
        if sync:
            loss = loss_fn(ddp(x), y)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            opt.zero_grad(set_to_none=False)
            t3 = time.perf_counter()
            losses.append(float(loss.item()))
        else:
            with ddp.no_sync():
                loss = loss_fn(ddp(x), y)
                t1 = time.perf_counter()
                loss.backward()
                t2 = time.perf_counter()
            opt.zero_grad(set_to_none=False)
            t3 = t2
        return t1 - t0, t2 - t1, t3 - t2

    for _ in range(a.warmup):
        step(True)
    compute = [step(False) for _ in range(a.compute_iters)]
    timed_start = time.time()
    timed = [step(True) for _ in range(a.iters)]
    timed_end = time.time()
    params = sum(p.numel() for p in model.parameters())
    result = {
        "rank": rank, "world_size": size, "params": params, "dtype": "fp32",
        "gradient_bytes": params * 4, "bucket_cap_bytes": int(a.bucket_cap_mb * 2**20),
        "buckets": bucket_sizes(ddp), "threads": a.threads, "batch": a.batch,
        "forward_s": [t[0] for t in timed], "backward_s": [t[1] for t in timed],
        "optimizer_s": [t[2] for t in timed], "iteration_s": [sum(t) for t in timed],
        "compute_forward_s": [t[0] for t in compute], "compute_backward_s": [t[1] for t in compute],
        "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
        "param_sha256": parameter_digest(model),
        "timed_start_unix": timed_start, "timed_end_unix": timed_end,
    }
    dist.destroy_process_group()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="traffic.ddp")
    ap.add_argument("--width", type=int, default=1024, help="features per layer")
    ap.add_argument("--depth", type=int, default=4, help="Linear layers")
    ap.add_argument("--batch", type=int, default=64, help="samples per rank per iteration")
    ap.add_argument("--bucket-cap-mb", type=float, default=25.0, help="DDP's bucket_cap_mb")
    ap.add_argument("--iters", type=int, default=5, help="timed training iterations")
    ap.add_argument("--warmup", type=int, default=2, help="training iterations before them")
    ap.add_argument("--compute-iters", type=int, default=3,
                    help="iterations without gradient sync, timed as the compute alone")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch's compute threads per rank (the twin's ranks share the host)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=300.0, help="gloo's per-operation timeout (s)")
    a = ap.parse_args(argv)
    if a.warmup < 1 or a.iters < 1 or a.compute_iters < 0:
        ap.error("--warmup and --iters must be at least 1 (DDP builds its buckets in the first)")
    if min(a.width, a.depth, a.batch, a.threads) < 1 or a.bucket_cap_mb <= 0:
        ap.error("--width, --depth, --batch, --threads and --bucket-cap-mb must be positive")
    try:
        result = train(a)
    except ImportError:
        print(json.dumps({"error": "torch is not installed in this worker's image: run it with "
                                   "'twin run --topology FILE --torch' (make image-torch)"}), flush=True)
        return 1
    except (RuntimeError, ValueError, OSError) as exc:
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        print(json.dumps({"error": f"rank {os.environ.get('RANK', '?')}: ddp: {text}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
