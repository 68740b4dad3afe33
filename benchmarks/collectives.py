"""Collectives: bus bandwidth vs message size for each all-reduce algorithm on ci-2site, against
the bottleneck rate and the analytic model, at two bandwidth scales (CPU-bound vs not).

  .venv/bin/python benchmarks/collectives.py [--scales 1/1000 1/4000] [--sizes 1M:64M]
Writes results/benchmarks/collectives.csv.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from twin.drive.benchmark import parse_sizes, run_collective
from twin.emulation import cleanup, runtime
from twin.host.rundirs import project_root
from twin.model.costs import allreduce_time, busbw
from twin.model.fabric import fabric_from_topology
from twin.output.csvrows import write_rows
from twin.spec.topology import Scale, load_topology

ROOT = project_root()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topology", default=str(ROOT / "topologies" / "ci-2site.yaml"))
    ap.add_argument("--scales", nargs="+", default=["1/1000", "1/4000"])
    ap.add_argument("--algos", nargs="+", default=["ring", "hd", "tree", "hier"])
    ap.add_argument("--sizes", default="1M:64M")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "collectives.csv"))
    args = ap.parse_args()
    runtime.ensure_services()
    cleanup.clean()
    rows = []
    for scale in args.scales:
        topo = load_topology(args.topology)
        topo = topo.model_copy(update={"scale": Scale(bandwidth=scale)})
        _, state = runtime.up(topo, args.topology, "none", progress=lambda s: None)
        try:
            fabric = min(topo.emulated_rate(s.fabric.rate) for s in topo.sites)
            for algo in args.algos:
                for r in run_collective(state, "allreduce", algo, parse_sizes(args.sizes),
                                        iters=args.iters, fabric_bps=fabric):
                    f = fabric_from_topology(topo)
                    t = allreduce_time(algo, f, r.size_bytes)
                    row = asdict(r)
                    row["model_time_us"] = round(t * 1e6, 1)
                    row["model_busbw_GBps"] = round(busbw(r.size_bytes, t, r.ranks) / 8e9, 6)
                    row["model_error"] = round((r.time_us - t * 1e6) / (t * 1e6), 4)
                    rows.append(row)
                    print(f"scale {scale} {algo:5s} {r.size_bytes:>10d} B  busbw {r.busbw_GBps * 8e3:7.1f} "
                          f"Mbit/s = {r.busbw_vs_bottleneck:6.1%} of {r.bottleneck_mbps:g}  model "
                          f"{row['model_busbw_GBps'] * 8e3:7.1f}  #wrong {r.wrong}", flush=True)
        finally:
            runtime.down()
    print(f"wrote {write_rows(rows, Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
