"""``twin model``: analytic predictions at full scale (no twin): iteration time and efficiency of
a training job spread over sites vs the same ranks in one data centre."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from traffic.collectives import ALLREDUCE_ALGOS
from twin.cli.console import console
from twin.errors import TwinError
from twin.spec.schedule import DTYPE_BYTES


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("model", help="analytic predictions at full scale")
    p.add_argument("--params", default="175B", help="model parameters, e.g. 175B")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPE_BYTES))
    p.add_argument("--model-parallel", type=int, default=64,
                   help="tensor x pipeline ways: divides the gradient each data-parallel rank all-reduces")
    p.add_argument("--sites", type=int, nargs="+", default=[2, 4, 40])
    p.add_argument("--per-site", type=int, default=8, help="data-parallel ranks per site")
    p.add_argument("--distance", type=float, nargs="+", default=[100, 1000, 2000, 3000], help="km of fiber")
    p.add_argument("--wan-rate", nargs="+", default=["100Gbit", "400Gbit", "1.2Tbit", "3.2Tbit"])
    p.add_argument("--lan-rate", default="400Gbit")
    p.add_argument("--algo", nargs="+", default=["ring", "hier"], choices=ALLREDUCE_ALGOS)
    p.add_argument("--compute", type=float, default=16.0, help="compute seconds per iteration")
    p.add_argument("--optimizer", type=float, default=0.5)
    p.add_argument("--bucket-mb", type=float, default=25.0)
    p.add_argument("--alpha-lan", type=float, default=10e-6, help="per-step LAN latency (s)")
    p.add_argument("--csv")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.model.full_scale import Job, parse_params, sweep
    from twin.output.csvrows import write_rows
    try:  # a parameter count or a rate that cannot be read; the message names the value
        job = Job(parse_params(args.params), args.dtype, args.model_parallel, args.compute,
                  args.optimizer, args.bucket_mb)
        rows = sweep(job, args.sites, args.per_site, args.distance, args.wan_rate, args.lan_rate,
                     args.algo, args.alpha_lan)
    except ValueError as exc:
        raise TwinError(f"model: {exc}") from None
    table = Table(title=f"model: {args.params} params {args.dtype}, gradient {job.gradient_bytes / 1e9:.1f} GB per "
                        f"replica, {args.per_site} ranks/site, LAN {args.lan_rate}, compute {args.compute:g} s")
    for col in ("sites", "km", "WAN", "algo", "overlap", "iteration s", "exposed s",
                "efficiency vs 1 DC"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.sites), f"{r.distance_km:g}", r.wan_rate, r.algo, "yes" if r.overlap else "no",
                      f"{r.iteration_s:.2f}", f"{r.exposed_s:.2f}", f"{r.efficiency:.1%}")
    console.print(table)
    if args.csv:
        write_rows([r.rounded() for r in rows], Path(args.csv))
        console.print(f"CSV: {args.csv}")
    return 0
