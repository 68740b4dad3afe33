"""``twin exec NODE -- CMD``: run a command inside a worker container (replaces this process)."""

from __future__ import annotations

import argparse
import os
import sys

from twin.cli.console import command_after_dashes


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("exec", help="run a command inside a worker container")
    p.add_argument("node")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    argv = command_after_dashes(args.cmd, "exec", "twin exec beijing1 -- ip addr")
    full = runtime.exec_argv(args.node, argv, interactive=sys.stdin.isatty())
    os.execvp(full[0], full)
    return 0  # not reached
