"""``twin graph TOPOLOGY -o FILE``: draw a topology's sites and links on a map (PNG or SVG)."""

from __future__ import annotations

import argparse
from pathlib import Path

from twin.cli.console import console


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("graph", help="draw a topology (PNG or SVG)")
    p.add_argument("topology")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.output.topology_map import draw
    from twin.spec.topology import load_topology
    out = draw(load_topology(args.topology), Path(args.output))
    console.print(f"wrote {out}")
    return 0
