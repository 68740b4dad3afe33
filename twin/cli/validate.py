"""``twin validate``: read topology files as ``twin up`` would, without starting anything."""

from __future__ import annotations

import argparse

from twin.cli.console import console, error_line
from twin.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("validate", help="validate topology files")
    p.add_argument("files", nargs="+")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Every file is read, so one run lists the problems of all of them; a bad file exits 2, as
    bad input does for every verb."""
    from twin.spec.topology import load_topology
    bad = 0
    for f in args.files:
        try:
            topo = load_topology(f)
            console.print(f"{f}: ok ({len(topo.sites)} sites, "
                          f"{sum(s.workers for s in topo.sites)} workers, {len(topo.links)} links, "
                          f"span {topo.span_km():.0f} km)")
        except InputError as exc:
            bad += 1
            for line in exc.problems:
                error_line(line)
    return 2 if bad else 0
