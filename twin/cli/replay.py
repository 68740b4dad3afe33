"""``twin replay TRACE...``: replay a Chakra execution trace (one file per rank) across the twin,
every collective as the collective it is, and print (and write) each iteration's times."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from rich.table import Table

from traffic.collectives import ALLREDUCE_ALGOS
from twin.cli.console import console
from twin.cli.options import add_scale
from twin.errors import TwinError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("replay", help="replay a Chakra execution trace across the twin")
    p.add_argument("traces", nargs="+", metavar="TRACE",
                   help="Chakra trace files (.et), one per rank, rank 0 first")
    p.add_argument("--topology", help="bring this up for the replay and down after it "
                                      "(default: the running twin)")
    p.add_argument("--workers", nargs="+", help="the ranks' workers, rank 0 first "
                                                "(default: every worker; as many as traces)")
    p.add_argument("--algo", default="ring", choices=ALLREDUCE_ALGOS, help="how all-reduces run")
    p.add_argument("--iterations", type=int, default=3, help="measured iterations")
    p.add_argument("--warmup", type=int, default=1, help="iterations run first, not measured")
    p.add_argument("--conns", type=int, default=1, help="TCP connections per peer")
    p.add_argument("--timeout", type=float, default=60.0, help="per-operation deadline (s)")
    p.add_argument("--csv", help="write one row per iteration to this CSV")
    add_scale(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.cli.collective import twin_for
    from twin.drive.replay import run_trace, trace_rows
    from twin.host.provenance import git_commit
    from twin.output.csvrows import write_rows
    from twin.spec.chakra import read_job
    if args.iterations < 1 or args.warmup < 0 or args.conns < 1:
        raise TwinError("replay: --iterations and --conns are at least 1, --warmup at least 0")
    job = read_job(args.traces)  # refused before anything is brought up
    with twin_for(args.topology, scale=args.scale, dilation=args.dilation) as (topo, state):
        results = run_trace(state, job, args.algo, topo.scale.bandwidth, iterations=args.iterations,
                            warmup=args.warmup, conns=args.conns, timeout=args.timeout,
                            workers=args.workers)
        rows = trace_rows(results, job, state, args.algo, topo.scale.bandwidth, args.workers,
                          git_commit())
    table = Table(title=f"{len(job.ranks)}-rank trace on {rows[0].topology} ({rows[0].scale}; "
                        f"{len(job.collectives)} collectives, all-reduce {args.algo})")
    for col in ("iteration", "iteration s", "compute s", "comm s", "exposed s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r.iteration), f"{r.iteration_s:.4f}", f"{r.compute_s:.4f}",
                      f"{r.comm_s:.4f}", f"{r.exposed_s:.4f}")
    console.print(table)
    console.print(f"median iteration {statistics.median(r.iteration_s for r in rows):.4f} s"
                  + ("; host-bound" if any(r.host_bound for r in rows) else ""))
    if args.csv:
        write_rows(rows, Path(args.csv))
        console.print(f"CSV: {args.csv}")
    return 0
