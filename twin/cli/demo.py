"""``twin demo`` (``make demo``): the FNTF question on the smallest topology in a few minutes:
calibration, efficiency vs the single site next to the model, bus bandwidth, determinism."""

from __future__ import annotations

import argparse

from twin.cli.console import console, progress
from twin.errors import TwinError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("demo", help="run the demo on ci-2site, results in results/demo/").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.experiments import demo
    try:
        report = demo.run(progress)
    except TwinError as exc:
        console.print(f"demo: {exc}")
        return 1
    console.print(report.summary)
    console.print(f"results: {report.out}/ (summary.md, calibration.csv, allreduce.csv, efficiency.csv, PNGs)")
    return 0
