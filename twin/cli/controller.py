"""``twin controller restart``: restart the running twin's controller, which reprograms every switch."""

from __future__ import annotations

import argparse

from twin.cli.console import console


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("controller", help="restart the running twin's controller")
    p.add_argument("action", choices=["restart"])
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    pid = runtime.restart_controller()
    console.print(f"controller restarted (pid {pid}); every switch reprogrammed")
    return 0
