"""``twin exec NODE -- CMD``: run a command inside a worker container (replaces this process)."""

from __future__ import annotations

import argparse
import os
import sys

from twin.errors import TwinError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("exec", help="run a command inside a worker container")
    p.add_argument("node")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    argv = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not argv:
        raise TwinError("exec: give a command after '--', e.g. twin exec beijing1 -- ip addr")
    full = runtime.exec_argv(args.node, argv, interactive=sys.stdin.isatty())
    os.execvp(full[0], full)
    return 0  # not reached
