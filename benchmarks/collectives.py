"""Collectives: bus bandwidth vs message size for each all-reduce algorithm on ci-2site, against
the bottleneck rate and the analytic model, at two bandwidth scales (CPU-bound vs not), and
PyTorch's gloo ring all-reduce in the same twin beside the twin's own ring (backend column).

  .venv/bin/python benchmarks/collectives.py [--scales 1/1000 1/4000] [--sizes 1M:64M]
      [--backends twin gloo] [--repeats 3]
Writes results/benchmarks/collectives.csv (the median of the repeats per size; the backend in
the last column) and prints, per scale, both backends' ring side by side with their ratio. With
gloo asked for, the workers run the torch image (built on first use); where pip cannot get torch
the benchmark says so in one line and runs the twin's rows alone.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from traffic.collectives import BACKENDS
from twin.drive.benchmark import CollectiveRow, parse_sizes, run_collective, topology_for_backends
from twin.emulation import cleanup, runtime
from twin.host.images import TorchUnavailable
from twin.host.rundirs import project_root
from twin.model.costs import allreduce_time, busbw
from twin.model.fabric import fabric_from_topology
from twin.output.csvrows import write_rows
from twin.spec.topology import Scale, Topology, load_topology

ROOT = project_root()


def median_rows(repeats: list[list[CollectiveRow]]) -> list[CollectiveRow]:
    """Size by size, the row of the run with the median time (the lower middle one of an even
    number of runs): a measured row, not an average of rows."""
    return [sorted(runs, key=lambda r: r.time_us)[(len(runs) - 1) // 2] for runs in zip(*repeats)]


def with_model(r: CollectiveRow, topo: Topology) -> dict:
    """The CSV row: the measurement, the analytic model's time beside it, the backend last."""
    t = allreduce_time(r.algo, fabric_from_topology(topo), r.size_bytes)
    row = asdict(r)
    backend = row.pop("backend")
    row["model_time_us"] = round(t * 1e6, 1)
    row["model_busbw_GBps"] = round(busbw(r.size_bytes, t, r.ranks) / 8e9, 6)
    row["model_error"] = round((r.time_us - t * 1e6) / (t * 1e6), 4)
    row["backend"] = backend
    return row


def side_by_side(rows: list[dict], repeats: int) -> str:
    """The ring all-reduce of both backends size by size, with gloo's bus bandwidth over the
    twin's (medians of the repeats); empty without gloo rows."""
    ring = {(r["backend"], r["size_bytes"]): r for r in rows if r["algo"] == "ring"}
    sizes = sorted(s for b, s in ring if b == "gloo" and ("twin", s) in ring)
    if not sizes:
        return ""
    lines = [f"# {rows[0]['scale']}: ring all-reduce, twin vs gloo (median of {repeats} runs, "
             f"{rows[0]['iters']} iterations each; bottleneck {rows[0]['bottleneck_mbps']:g} Mbit/s)",
             f"# {'size (B)':>10}  {'twin busbw':>16}  {'gloo busbw':>16}  gloo/twin"]
    for s in sizes:
        t, g = ring[("twin", s)]["busbw_GBps"] * 8e3, ring[("gloo", s)]["busbw_GBps"] * 8e3
        lines.append(f"  {s:>10}  {t:>9.1f} Mbit/s  {g:>9.1f} Mbit/s  {g / t:9.3f}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topology", default=str(ROOT / "topologies" / "ci-2site.yaml"))
    ap.add_argument("--scales", nargs="+", default=["1/1000", "1/4000"])
    ap.add_argument("--algos", nargs="+", default=["ring", "hd", "tree", "hier"])
    ap.add_argument("--sizes", default="1M:64M")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--backends", nargs="+", default=["twin", "gloo"], choices=list(BACKENDS),
                    help="gloo runs the ring all-reduce only (gloo's own algorithm)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of every size; the CSV keeps the median run's row")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "collectives.csv"))
    args = ap.parse_args()
    runtime.ensure_services()
    cleanup.clean()
    backends = list(args.backends)
    try:
        base = topology_for_backends(load_topology(args.topology), backends, progress=print)
    except TorchUnavailable as exc:
        print(f"gloo left out: {exc}", flush=True)
        backends = [b for b in backends if b != "gloo"]
        base = load_topology(args.topology)
    rows: list[dict] = []
    for scale in args.scales:
        topo = base.model_copy(update={"scale": Scale(bandwidth=scale)})
        _, state = runtime.up(topo, args.topology, "none", progress=lambda s: None)
        try:
            fabric = min(topo.emulated_rate(s.fabric.rate) for s in topo.sites)
            runs: dict[tuple[str, str], list[list[CollectiveRow]]] = {}
            for _ in range(args.repeats):  # backends interleaved: a drift of the machine hits both
                for algo, backend in ((a, b) for a in args.algos for b in backends
                                      if b == "twin" or a == "ring"):
                    runs.setdefault((algo, backend), []).append(run_collective(
                        state, "allreduce", algo, parse_sizes(args.sizes), iters=args.iters,
                        fabric_bps=fabric, backend=backend))
            for (algo, backend), repeats in runs.items():
                for r in median_rows(repeats):
                    rows.append(row := with_model(r, topo))
                    print(f"scale {scale} {algo:5s} {backend:4s} {r.size_bytes:>10d} B  busbw "
                          f"{r.busbw_GBps * 8e3:7.1f} Mbit/s = {r.busbw_vs_bottleneck:6.1%} of "
                          f"{r.bottleneck_mbps:g}  model "
                          f"{row['model_busbw_GBps'] * 8e3:7.1f}  #wrong {r.wrong}", flush=True)
        finally:
            runtime.down()
        print(side_by_side([r for r in rows if r["scale"] == state.scale], args.repeats), flush=True)
    print(f"wrote {write_rows(rows, Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
