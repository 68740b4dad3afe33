"""``twin setup``: start the daemons and build what a twin needs (packages and the venv come
from scripts/setup.sh)."""

from __future__ import annotations

import argparse

from twin.cli.console import progress


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("setup", help="start dockerd/OVS and build the worker image").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation.delayline import ensure_built
    from twin.host import services
    from twin.host.engine import docker_client
    from twin.host.images import build_worker
    progress(f"docker engine: {services.ensure_docker()}")
    progress(f"open vswitch: {services.ensure_ovs()}")
    progress(f"delay line: {ensure_built()}")
    progress(f"worker image: {build_worker(docker_client(), log=progress)}")
    return 0
