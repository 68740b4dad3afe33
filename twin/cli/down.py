"""``twin down``: stop the running twin and say what was removed."""

from __future__ import annotations

import argparse

from twin.cli.console import console


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("down", help="stop the running twin").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    state = runtime.load_state()
    report = runtime.down()
    name = state.topology if state else "no recorded twin"
    console.print(f"down ({name}): {report.summary()}")
    return 0
