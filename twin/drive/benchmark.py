"""Run collectives across a live twin and report them the way NCCL-tests does.

The twin arranges the rendezvous (rank list with addresses and sites), starts one rank of the
backend's worker-side program in every worker container, and turns the per-rank timings into
rows with NCCL-tests' columns and bus-bandwidth factors, plus the emulation context every number
needs. Two backends, measured alike (same sizes, iterations, barrier before each, slowest rank's
mean): ``twin``, the twin's own generator (``traffic.bench``, every algorithm), and ``gloo``,
PyTorch's torch.distributed over gloo (``traffic.torch_bench``, gloo's own algorithm: a ring for
all-reduce), which needs the workers to run the torch image.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from traffic.collectives import BACKENDS
from twin.drive.ranks import launch_ranks, rank_error, send_windows
from twin.drive.workerexec import WorkerProcess
from twin.emulation.state import TwinState
from twin.errors import TwinError
from twin.measure.hostload import HostLoad, host_columns
from twin.units import parse_size

if TYPE_CHECKING:
    from twin.spec.topology import Topology


def busbw_factor(op: str, n: int) -> float:
    """NCCL-tests' factors: algbw x factor = busbw, comparable with the link rate."""
    if n <= 1:
        return 1.0 if op == "broadcast" else 0.0
    return {"allreduce": 2 * (n - 1) / n, "reducescatter": (n - 1) / n, "allgather": (n - 1) / n,
            "alltoall": (n - 1) / n, "broadcast": 1.0}[op]


def parse_sizes(text: str) -> list[int]:
    """'1M:64M' doubles from 1 MiB to 64 MiB (like nccl-tests -b/-e/-f 2); '1M,3M' lists them."""
    if ":" in text:
        lo, hi = (parse_size(x) for x in text.split(":", 1))
        if lo <= 0 or hi < lo:
            raise ValueError(f"size range {text!r} must go from a positive size up")
        out = []
        s = lo
        while s <= hi:
            out.append(s)
            s *= 2
        return out
    sizes = [parse_size(x) for x in text.split(",") if x.strip()]
    if not sizes or any(s <= 0 for s in sizes):
        raise ValueError(f"sizes {text!r} must be positive")
    return sizes


@dataclass
class CollectiveRow:
    topology: str
    op: str
    algo: str
    ranks: int
    sites: int
    size_bytes: int
    count: int
    type: str
    redop: str
    root: int
    time_us: float
    algbw_GBps: float
    busbw_GBps: float
    wrong: int
    iters: int
    conns: int
    bottleneck_mbps: float
    busbw_vs_bottleneck: float
    scale: str
    mechanism: str
    time_us_min_rank: float
    time_us_max_rank: float
    backend: str  # who ran it (a key of BACKENDS); after the older columns, which keep their order
    dilation: float = 1.0
    host_cpu_saturated_share: float = 0.0  # samples with the CPUs >= 95% busy (measure.hostload)
    host_bound: bool = False  # any of the three witnesses of measure.hostload says so
    line_late_share: Optional[float] = None  # the delay lines' frames >= 0.5 ms late (None: netem)
    line_late_p99_ms: Optional[float] = None
    generator_cpu_share: Optional[float] = None  # the busiest rank's CPU over its timed region
    host: str = ""  # the printed verdict (LoadSummary.describe)


def bottleneck_bps(state: TwinState, fabric_bps: float) -> float:
    rates = [w.emulated_bps for w in state.wan] + [fabric_bps]
    return min(rates)


def run_collective(state: TwinState, op: str, algo: str, sizes: list[int], iters: int = 5,
                   warmup: int = 1, conns: int = 1, check: bool = True, timeout: float = 30.0,
                   deadline: float = 1800.0, fabric_bps: float = float("inf"),
                   workers: Optional[list[str]] = None, backend: str = "twin",
                   on_start: Callable[[list[WorkerProcess]], None] = lambda procs: None
                   ) -> list[CollectiveRow]:
    """Every size of one collective on every member (all workers, or those named), a row each.

    ``timeout`` bounds each operation inside the ranks, ``deadline`` the whole run; ``on_start``
    sees the rank processes once they are started (tests use it to break something mid-run).
    Ranks still running when this returns or raises are killed. ``backend`` is a key of
    BACKENDS; gloo runs its own algorithm (``algo`` must be ring) over one connection per peer.
    Under time dilation the ranks run in host time (``timeout`` and ``deadline`` x K) and every
    time reported is divided by K (twin.plan.dilation)."""
    module = backend_module(backend, op, algo, conns)
    time_ = state.time
    timeout, deadline = time_.host_s(timeout), time_.host_s(deadline)
    argv_tail = ["--op", op, "--sizes", ",".join(str(s) for s in sizes), "--iters", str(iters),
                 "--warmup", str(warmup), "--conns", str(conns), "--timeout", str(timeout)]
    if backend == "twin":
        argv_tail += ["--algo", algo, "--sndbuf", json.dumps(send_windows(state))]
    if not check:
        argv_tail.append("--no-check")
    with HostLoad.of(state) as load, launch_ranks(state, module, argv_tail, workers) as ranks:
        members, procs = ranks.members, ranks.procs
        on_start(procs)
        end = time.monotonic() + deadline
        first_error: Optional[str] = None
        outputs: dict[int, str] = {}
        while len(outputs) < len(procs):
            for i, p in enumerate(procs):
                if i in outputs or (rc := p.poll()) is None:
                    continue
                out, err = p.communicate()
                outputs[i] = out
                if rc != 0 and first_error is None:
                    first_error = rank_error(out, err, i, members[i].name, rc)
            if first_error or time.monotonic() > end:
                break
            time.sleep(0.05)
        if first_error:
            # the others notice within their per-operation timeout; collect their view too
            grace = time.monotonic() + timeout + 5
            seen = []
            for i, p in enumerate(procs):
                if i not in outputs:
                    try:
                        out, err = p.communicate(timeout=max(0.1, grace - time.monotonic()))
                        if (rc := p.wait()) != 0:
                            seen.append(rank_error(out, err, i, members[i].name, rc))
                    except subprocess.TimeoutExpired:
                        pass
            also = f"; then {'; '.join(seen[:2])}" if seen else ""
            raise TwinError(f"{op}/{algo} ({backend}) failed: {first_error}{also}")
        if len(outputs) < len(procs):
            raise TwinError(f"{op}/{algo} ({backend}) did not finish within {deadline:.0f} s")
    per_rank = [[json.loads(line) for line in outputs[i].splitlines() if line.startswith("{")]
                for i in range(len(procs))]
    n = len(members)
    sites = len({w.site for w in members})
    bottleneck = bottleneck_bps(state, fabric_bps)
    rows = []
    witnessed = load.summary  # the CPUs and delay lines over the whole run, every size
    for k in range(len(sizes)):
        results = [r[k] for r in per_rank]
        means = [time_.fabric_s(statistics.mean(r["times_us"])) for r in results]
        t = max(means)
        nbytes = results[0]["size"]
        algbw = nbytes / (t * 1e-6) / 1e9
        busbw = algbw * busbw_factor(op, n)
        wrong = sum(r["wrong"] for r in results) if check else -1
        host = witnessed.with_generator(
            [r["cpu_s"] / (sum(r["times_us"]) * 1e-6) for r in results
             if "cpu_s" in r and sum(r["times_us"]) > 0])
        rows.append(CollectiveRow(
            topology=state.topology, op=op, algo=algo if op == "allreduce" else "ring",
            backend=backend,
            ranks=n, sites=sites, size_bytes=nbytes, count=results[0]["count"], type="float",
            redop="sum" if op in ("allreduce", "reducescatter") else "none",
            root=0 if op == "broadcast" else -1, time_us=round(t, 1),
            algbw_GBps=round(algbw, 6), busbw_GBps=round(busbw, 6), wrong=wrong, iters=iters,
            conns=conns, bottleneck_mbps=round(bottleneck / 1e6, 3),
            busbw_vs_bottleneck=round(busbw * 8e9 / bottleneck, 4) if bottleneck else 0.0,
            scale=state.scale, mechanism=state.mechanism,
            time_us_min_rank=round(min(means), 1), time_us_max_rank=round(t, 1),
            dilation=time_.k, **host_columns(host)))
    return rows


def backend_module(backend: str, op: str, algo: str, conns: int) -> str:
    """The worker-side program of a backend; what gloo cannot do is refused before any rank starts."""
    if backend not in BACKENDS:
        raise TwinError(f"unknown backend {backend!r} (use {', '.join(BACKENDS)})")
    if backend == "gloo" and op == "allreduce" and algo != "ring":
        raise TwinError(f"backend gloo runs its own all-reduce (a ring), not {algo!r}: use --algo ring")
    if backend == "gloo" and conns != 1:
        raise TwinError("backend gloo opens one connection per peer pair: use --conns 1")
    return BACKENDS[backend]


def topology_for_backends(topo: Topology, backends: list[str],
                          progress: Callable[[str], None] = lambda s: None) -> Topology:
    """The topology to bring up for these backends: with gloo asked for and no worker image
    named in the file, every worker runs the torch image (built here on first use; the twin's
    own ranks run in it as well, so both backends share one twin). An image the file names is
    kept: it must then have torch itself. Raises TorchUnavailable (one line saying how to get
    torch) where pip cannot get it."""
    if "gloo" not in backends or topo.image or any(s.image for s in topo.sites):
        return topo
    from twin.host.engine import docker_client
    from twin.host.images import build_torch
    return topo.model_copy(update={"image": build_torch(docker_client(), log=progress)})
