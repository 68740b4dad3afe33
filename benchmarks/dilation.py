"""Time dilation's convergence: the same all-reduce at K = 1, 2, 4, 8, against the analytic model.

A fabric the machine can carry in real time must not move with K beyond noise (ci-2site); one
it cannot (the 40-city ring and tree: 40 ranks and 87 delay lines on the machine's CPUs) must
converge on the model as K grows, because the host's own costs shrink to 1/K in fabric time.
Every row says whether the host was the bottleneck while it ran (twin.measure.hostload).

  .venv/bin/python benchmarks/dilation.py [--topologies ci-2site fntf-40city] [--k 1 2 4 8]
Writes results/benchmarks/dilation.csv and prints one line per (topology, algorithm) with the
fabric-time median at each K and its error against the model.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict
from pathlib import Path

from twin.drive.benchmark import parse_sizes, run_collective
from twin.emulation import cleanup, runtime
from twin.host.provenance import git_commit
from twin.host.rundirs import project_root
from twin.model.costs import allreduce_time
from twin.model.fabric import fabric_from_topology
from twin.output.csvrows import write_rows
from twin.spec.topology import load_topology

ROOT = project_root()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topologies", nargs="+", default=["ci-2site", "fntf-40city"])
    ap.add_argument("--scale", default="1/4000")
    ap.add_argument("--k", nargs="+", type=float, default=[1, 2, 4, 8])
    ap.add_argument("--algos", nargs="+", default=["ring", "tree"])
    ap.add_argument("--size", default="4M")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each point on the same twin")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "dilation.csv"))
    args = ap.parse_args()
    runtime.ensure_services()
    cleanup.clean()
    commit = git_commit()
    rows: list[dict] = []
    summary: dict[tuple[str, str], dict[float, tuple[float, float, float]]] = {}
    for name in args.topologies:
        path = str(ROOT / "topologies" / f"{name}.yaml")
        for k in args.k:
            topo = load_topology(path).with_scale(args.scale).with_dilation(k)
            _, state = runtime.up(topo, path, "none", progress=lambda s: None)
            try:
                fabric = min(topo.emulated_rate(s.fabric.rate) for s in topo.sites)
                model_fabric = fabric_from_topology(topo)
                for algo in args.algos:
                    times, saturated = [], []
                    for rep in range(args.repeats):
                        (r,) = run_collective(state, "allreduce", algo, parse_sizes(args.size),
                                              iters=args.iters, fabric_bps=fabric)
                        model = allreduce_time(algo, model_fabric, r.size_bytes) * 1e6
                        row = dict(asdict(r), repeat=rep, model_time_us=round(model, 1),
                                   model_error=round((r.time_us - model) / model, 4),
                                   git_commit=commit)
                        rows.append(row)
                        times.append(r.time_us)
                        saturated.append(r.host_cpu_saturated_share)
                    med = statistics.median(times)
                    summary.setdefault((name, algo), {})[k] = (
                        med, (med - model) / model, max(saturated))
                    print(f"{name:12s} {algo:5s} K={k:<3g} median {med / 1e3:9.2f} ms (fabric time) "
                          f"model {model / 1e3:9.2f} ms error {(med - model) / model:+7.1%} "
                          f"host CPU >=95% for up to {max(saturated):.0%} of a run", flush=True)
            finally:
                runtime.down()
    print()
    print("convergence (median fabric time; error vs the model; worst host saturation):")
    for (name, algo), by_k in summary.items():
        cells = "  ".join(f"K={k:g}: {t / 1e3:8.2f} ms {e:+6.1%} cpu{s:4.0%}"
                          for k, (t, e, s) in sorted(by_k.items()))
        print(f"  {name:12s} {algo:5s} {cells}")
    print(f"wrote {write_rows(rows, Path(args.out))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
