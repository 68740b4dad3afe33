"""``twin run -- CMD...``: a command in every worker at once with torchrun's rendezvous
environment (twin.drive.everywhere); each rank's output, and a non-zero exit naming each failed
rank with its last lines."""

from __future__ import annotations

import argparse
import sys

from twin.cli.console import command_after_dashes, error_line
from twin.errors import TwinError

TAIL_LINES = 10


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("run", help="run a command in every worker with torchrun's environment")
    p.add_argument("--topology", help="bring this up for the command and down after it "
                                      "(default: the running twin)")
    p.add_argument("--torch", action="store_true",
                   help="with --topology: the workers run the torch image (built on first use)")
    p.add_argument("--port", type=int, default=29500, help="MASTER_PORT (default 29500)")
    p.add_argument("--timeout", type=float, default=600.0, help="kill every rank after this (s)")
    p.add_argument("--grace", type=float, default=10.0,
                   help="after a rank fails, the others' time to end before they are killed (s)")
    p.add_argument("--workers", nargs="+", help="only these workers, ranked in this order")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.cli.collective import twin_for
    from twin.drive.everywhere import run_everywhere
    argv = command_after_dashes(args.cmd, "run", "twin run -- python3 train.py")
    if args.torch and not args.topology:
        raise TwinError("run: --torch needs --topology (a running twin keeps the image it was brought up with)")
    with twin_for(args.topology, backends=["gloo"] if args.torch else ["twin"]) as (_, state):
        outcomes = run_everywhere(state, argv, port=args.port, timeout=args.timeout,
                                  grace=args.grace, workers=args.workers)
    for o in outcomes:
        for line in o.stdout.splitlines():
            print(f"[{o.rank} {o.worker}] {line}")
        for line in o.stderr.splitlines():
            print(f"[{o.rank} {o.worker}] {line}", file=sys.stderr)
    failed = [o for o in outcomes if o.failed]
    for o in failed:
        status = o.why_killed or f"exited with status {o.returncode}"
        error_line(f"twin: rank {o.rank} ({o.worker}) {status}; its last lines:")
        for line in o.last_lines(TAIL_LINES):
            print(f"    {line}", file=sys.stderr)
    if failed:
        return 1
    print(f"{len(outcomes)} ranks exited with status 0", file=sys.stderr)
    return 0
