"""The ``twin`` command: assembles one subcommand per module of this package and dispatches.

Every user-facing failure is one line on stderr and a non-zero exit; tracebacks are bugs:
bad input (InputError) exits 2 with one line per problem, any other TwinError 1, Ctrl-C 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

from twin.cli.console import error_line
from twin.errors import InputError, TwinError

# One module of this package per verb, in the order ``twin --help`` lists them. Each has
# ``add_parser(subparsers)``, which sets ``run`` on the subcommands it adds, and ``run(args)``.
VERBS = ("doctor", "setup", "validate", "schema", "up", "down", "clean", "exec", "inspect",
         "controller", "link", "calibrate", "trace", "collective", "replay", "run", "campaign", "experiment",
         "model",
         "graph", "demo")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="twin", description="Long-haul AI fabric twin")
    sub = ap.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        importlib.import_module(f"twin.cli.{verb}").add_parser(sub)
    return ap


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except InputError as exc:
        for line in exc.problems:
            error_line(line)
        return 2
    except TwinError as exc:
        error_line(f"twin: {exc}")
        return 1
    except KeyboardInterrupt:
        error_line("twin: interrupted; everything started was removed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
