"""``twin doctor``: what this machine offers the twin, and how to fix what is missing."""

from __future__ import annotations

import argparse

from rich.table import Table

from twin.cli.console import console, error_line


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("doctor", help="check what this machine offers").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.host.capabilities import check_all
    caps = check_all()
    table = Table(title="twin doctor: what this machine offers")
    for col in ("capability", "status", "detail", "mechanism the twin uses"):
        table.add_column(col)
    for c in caps:
        table.add_row(c.name, "[green]ok[/]" if c.ok else "[red]missing[/]", c.detail, c.mechanism)
    console.print(table)
    problems = [c for c in caps if not c.ok]
    for c in problems:
        error_line(f"problem: {c.name}: {c.detail}; fix: {c.fix}")
    return 1 if problems else 0
