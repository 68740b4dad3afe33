"""``twin schema``: the topology file's JSON schema, for editors and CI."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("schema", help="print the topology JSON schema").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.spec.topology import json_schema
    print(json_schema())
    return 0
