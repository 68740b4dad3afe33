"""``twin clean``: remove whatever any twin run left (containers, switches, links, processes)."""

from __future__ import annotations

import argparse

from twin.cli.console import console


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("clean", help="remove everything any twin run left")
    p.add_argument("--images", action="store_true",
                   help="also remove worker images built from older traffic/ code")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation.cleanup import clean
    console.print(clean().summary())
    if args.images:
        from twin.host.engine import docker_client
        from twin.host.images import remove_stale_worker_images
        removed = remove_stale_worker_images(docker_client())
        console.print(f"removed {len(removed)} worker image(s) of older traffic/ code"
                      + (f": {', '.join(removed)}" if removed else ""))
    return 0
