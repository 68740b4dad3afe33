"""Real DDP training beside the twin's replay and the model: iteration time of a PyTorch
DistributedDataParallel job (traffic.ddp over gloo, real forward and backward on the CPU) with
all ranks in one site and spread over two sites at several distances, the twin's replay of the
same schedule (DDP's buckets, the compute the job measured single-site, the twin's ring) and the
analytic model's prediction of that schedule.

  .venv/bin/python benchmarks/ddp.py [--topology topologies/ci-2site.yaml] [--scale 1/1000]
      [--distances 1000 4000 10000] [--width 1024 --depth 4 --batch 256 --bucket-cap-mb 4]
Writes results/benchmarks/ddp.csv (one row per layout: the single site first, then each
distance) and ddp.png beside it, and prints one line per layout. The workers run the torch
image (built on first use); where pip cannot get torch the benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Optional

from twin.drive.benchmark import run_collective, topology_for_backends
from twin.drive.ddp import DdpConfig, DdpRun, replay_schedule, run_ddp
from twin.drive.replay import run_training
from twin.emulation import cleanup, runtime
from twin.emulation.state import TwinState
from twin.host.images import TorchUnavailable
from twin.host.provenance import git_commit
from twin.host.rundirs import project_root
from twin.measure.hostload import HOST_BOUND_SHARE
from twin.model.fabric import fabric_from_topology
from twin.model.iteration import Iteration, predict
from twin.output.csvrows import write_rows
from twin.spec.schedule import Schedule
from twin.spec.topology import Topology, load_topology, single_site

ROOT = project_root()
GLOO_MAX_SEGMENT_BYTES = 2**20  # gloo's ring all-reduce: kMaxSegmentSize (gloo/allreduce.h)


def at_distance(topo: Topology, km: float) -> Topology:
    """Every WAN link ``km`` of fiber long (its delay from the distance)."""
    links = [link.model_copy(update={"distance_km": km, "delay": None}) for link in topo.links]
    return topo.model_copy(update={"links": links})


def gloo_segment_bytes(nbytes: int, ranks: int, element: int = 4) -> int:
    """The segment gloo's ring all-reduce cuts an ``nbytes`` buffer into (gloo/allreduce.cc):
    at most 1 MiB, at least 2 x ranks segments, a multiple of ranks of them. Two are in flight
    per hop at all times, whatever the link's bandwidth-delay product."""
    def round_up(v: int, m: int) -> int:
        return v + (m - v % m) % m
    segments = round_up(max(-(-nbytes // GLOO_MAX_SEGMENT_BYTES), 2 * ranks), ranks)
    return round_up(-(-nbytes // segments), element)


def wan_floor_s(topo: Topology, gradient_bytes: int) -> float:
    """The least time one all-reduce of the gradient can take across the WAN, whatever the
    algorithm: each site's partial sum (the whole gradient) must cross the slowest link one
    way, after that link's one-way delay. 0 for a single site."""
    if not topo.links:
        return 0.0
    one_way = max(topo.link_delay(link) for link in topo.links)
    rate = min(topo.emulated_rate(link.rate) for link in topo.links)
    return one_way + gradient_bytes * 8 / rate


def alone(state: TwinState, topo: Topology, ddp: DdpRun, iters: int) -> dict:
    """One all-reduce of DDP's largest bucket and one of its whole gradient, each alone (no
    compute, no other bucket), by gloo and by the twin's ring: the columns that tell whether a
    gap between DDP and the replay is gloo's collective itself or DDP around it."""
    fabric = min(topo.emulated_rate(s.fabric.rate) for s in topo.sites)
    sizes = [max(ddp.buckets), ddp.gradient_bytes]
    out: dict = {}
    for backend in ("gloo", "twin"):
        got = run_collective(state, "allreduce", "ring", sizes, iters=iters, fabric_bps=fabric,
                             backend=backend, check=False, timeout=120.0)
        for what, r in zip(("bucket", "gradient"), got):
            out[f"{backend}_allreduce_{what}_s"] = round(r.time_us / 1e6, 4)
            out[f"{backend}_allreduce_{what}_busbw_mbps"] = round(r.busbw_GBps * 8e3, 1)
        # sampled over the whole run, the ranks' start-up included (gloo's: importing torch)
        out[f"{backend}_allreduce_host_cpu_saturated_share"] = got[0].host_cpu_saturated_share
        out[f"{backend}_allreduce_host_bound"] = got[0].host_bound
    return out


def row(topo: Topology, km: Optional[float], ddp: DdpRun, sched: Schedule, replay_s: float,
        replay_saturated: float, replay_bound: bool, model_s: float, config: DdpConfig,
        scale: float, mechanism: str, commit: str, collectives: dict) -> dict:
    """One layout's CSV row: what ran, real DDP, the replay, the model, the host's load."""
    one_way = max((topo.link_delay(link) for link in topo.links), default=0.0)
    wan_mbps = min((topo.emulated_rate(link.rate) for link in topo.links), default=0.0) / 1e6
    rtt = 2 * one_way
    ddp_s = ddp.median_iteration_s
    segment = gloo_segment_bytes(max(ddp.buckets), ddp.ranks)
    return {
        "topology": topo.name, "layout": "single-site" if len(topo.sites) == 1 else "spread",
        "sites": len(topo.sites), "ranks": ddp.ranks, "distance_km": km or 0.0,
        "one_way_delay_ms": round(one_way * 1e3, 3), "wan_mbps_emulated": round(wan_mbps, 3),
        "params": ddp.params, "params_real_equivalent": round(ddp.params / scale),
        "dtype": "fp32", "gradient_bytes_emulated": ddp.gradient_bytes,
        "gradient_bytes_real_equivalent": round(ddp.gradient_bytes / scale),
        "bucket_cap_bytes": int(config.bucket_cap_mb * 2**20), "buckets": len(ddp.buckets),
        "bucket_bytes": " ".join(str(b) for b in ddp.buckets),
        "width": config.width, "depth": config.depth, "batch": config.batch,
        "threads_per_rank": config.threads, "iterations": len(ddp.iteration_s),
        "ddp_iteration_s": round(ddp_s, 4),
        "ddp_iteration_min_s": round(min(ddp.iteration_s), 4),
        "ddp_iteration_max_s": round(max(ddp.iteration_s), 4),
        "ddp_compute_s": round(ddp.compute_s, 4),  # this layout's own compute-only iterations
        "ddp_exposed_s": round(ddp_s - sched.compute, 4),
        "ddp_in_sync": ddp.in_sync, "loss_first": round(ddp.loss_first, 6),
        "loss_last": round(ddp.loss_last, 6),
        "schedule_forward_s": round(sched.forward, 4), "schedule_backward_s": round(sched.backward, 4),
        "schedule_optimizer_s": round(sched.optimizer, 4),
        "replay_iteration_s": round(replay_s, 4), "replay_exposed_s": round(replay_s - sched.compute, 4),
        "ddp_vs_replay": round((ddp_s - replay_s) / replay_s, 4),
        "model_iteration_s": round(model_s, 4), "ddp_vs_model": round((ddp_s - model_s) / model_s, 4),
        "replay_vs_model": round((replay_s - model_s) / model_s, 4),
        "wan_floor_s": round(wan_floor_s(topo, ddp.gradient_bytes), 4),
        # two of gloo's segments of DDP's largest bucket per round trip, as a rate: below the
        # WAN's, a window of two segments in flight per hop cannot fill the link
        "gloo_segment_bytes": segment,
        "gloo_window_mbps": round(2 * segment * 8 / rtt / 1e6, 1) if rtt else 0.0,
        **collectives,
        "scale": topo.scale.describe(), "mechanism": mechanism,
        "ddp_host_cpu_saturated_share": ddp.host_cpu_saturated_share, "ddp_host_bound": ddp.host_bound,
        "replay_host_cpu_saturated_share": round(replay_saturated, 3), "replay_host_bound": replay_bound,
        "git_commit": commit,
    }


def plot(rows: list[dict], out: Path) -> Path:
    """Iteration time per layout: real DDP (with its spread of iterations), replay, model; a
    layout where DDP or the replay was host-bound says so under its name."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [("single site" if r["layout"] == "single-site" else f"{r['distance_km']:,.0f} km")
              + ("\n(host-bound)" if r["ddp_host_bound"] or r["replay_host_bound"] else "")
              for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    w = 0.27
    ddp = [r["ddp_iteration_s"] for r in rows]
    err = [[r["ddp_iteration_s"] - r["ddp_iteration_min_s"] for r in rows],
           [r["ddp_iteration_max_s"] - r["ddp_iteration_s"] for r in rows]]
    ax.bar([x - w for x in xs], ddp, w, yerr=err, capsize=3, label="real DDP (gloo)")
    ax.bar(list(xs), [r["replay_iteration_s"] for r in rows], w, label="twin replay (ring)")
    ax.bar([x + w for x in xs], [r["model_iteration_s"] for r in rows], w, label="model (ring)")
    ax.axhline(rows[0]["schedule_forward_s"] + rows[0]["schedule_backward_s"]
               + rows[0]["schedule_optimizer_s"], color="grey", ls="--", lw=1, label="compute")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("iteration time (s, median)")
    r0 = rows[0]
    ax.set_title(f"DDP, {r0['ranks']} ranks, {r0['gradient_bytes_emulated'] / 2**20:.1f} MiB gradient "
                 f"in {r0['buckets']} buckets; {r0['scale']}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topology", default=str(ROOT / "topologies" / "ci-2site.yaml"))
    ap.add_argument("--scale", default="1/1000")
    ap.add_argument("--distances", nargs="+", type=float, default=[1000, 4000, 10000],
                    help="km of fiber on every WAN link")
    d = DdpConfig()
    ap.add_argument("--width", type=int, default=d.width)
    ap.add_argument("--depth", type=int, default=d.depth)
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--bucket-cap-mb", type=float, default=d.bucket_cap_mb)
    ap.add_argument("--iters", type=int, default=d.iters)
    ap.add_argument("--allreduce-iters", type=int, default=3,
                    help="iterations of each all-reduce alone (DDP's bucket, its gradient)")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "ddp.csv"))
    args = ap.parse_args()
    config = DdpConfig(width=args.width, depth=args.depth, batch=args.batch,
                       bucket_cap_mb=args.bucket_cap_mb, iters=args.iters)
    runtime.ensure_services()
    cleanup.clean()
    commit = git_commit()
    try:
        base = topology_for_backends(load_topology(args.topology).with_scale(args.scale), ["gloo"],
                                     progress=print)
    except TorchUnavailable as exc:
        print(f"ddp needs the torch image: {exc}")
        return 1
    scale = base.scale.bandwidth
    layouts: list[tuple[Optional[float], Topology]] = [(None, single_site(base))]
    layouts += [(km, at_distance(base, km)) for km in args.distances]
    sched: Optional[Schedule] = None
    rows: list[dict] = []
    for km, topo in layouts:
        _, state = runtime.up(topo, args.topology, "none", progress=lambda s: None)
        try:
            ddp = run_ddp(state, config)
            if sched is None:  # the single site's compute is the schedule's, for every layout
                sched = replay_schedule(ddp)
            replay = run_training(state, sched, "ring", iterations=config.iters, warmup=1)
            collectives = alone(state, topo, ddp, args.allreduce_iters)
        finally:
            runtime.down()
        replay_s = statistics.median(r.iteration_s for r in replay)
        saturated = max(r.host_saturated_share for r in replay)
        model_s = predict("ring", fabric_from_topology(topo), Iteration.of(sched)).iteration
        rows.append(r := row(topo, km, ddp, sched, replay_s, saturated, saturated > HOST_BOUND_SHARE, model_s,
                             config, scale, state.mechanism, commit, collectives))
        where = "single site" if km is None else f"{km:,.0f} km"
        print(f"{where:>12}: DDP {r['ddp_iteration_s']:.3f} s (compute {r['ddp_compute_s']:.3f}, "
              f"in sync {ddp.in_sync})  replay {replay_s:.3f} s  model {model_s:.3f} s  "
              f"DDP vs replay {r['ddp_vs_replay']:+.1%}  vs model {r['ddp_vs_model']:+.1%}  "
              f"host-bound DDP {ddp.host_bound} ({ddp.host_cpu_saturated_share:.0%}) "
              f"replay {r['replay_host_bound']} ({saturated:.0%})", flush=True)
        print(f"{'':>12}  alone, bucket / gradient: gloo {r['gloo_allreduce_bucket_s']:.3f} / "
              f"{r['gloo_allreduce_gradient_s']:.3f} s, twin ring {r['twin_allreduce_bucket_s']:.3f} / "
              f"{r['twin_allreduce_gradient_s']:.3f} s (host-bound: gloo {r['gloo_allreduce_host_bound']}, "
              f"twin {r['twin_allreduce_host_bound']})", flush=True)
    out = write_rows(rows, Path(args.out))
    print(f"wrote {out} and {plot(rows, Path(args.out).with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
