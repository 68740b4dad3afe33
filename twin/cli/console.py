"""What every ``twin`` verb prints through: the console, timestamped progress lines, error lines
and paths as the user reads them.

Tables get room when output goes to a file or CI log; errors are plain lines on stderr, never
wrapped, so a script can read them one problem a line.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rich.console import Console

from twin.errors import TwinError

console = Console(width=None if sys.stdout.isatty() else 200)


def progress(msg: str) -> None:
    """One line of what a long command is doing, with the time of day."""
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}")


def error_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def shown_path(path: str) -> str:
    """Relative to the current directory where it lies below it (results/runs/...)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def command_after_dashes(words: list[str], verb: str, example: str) -> list[str]:
    """The command a verb runs, given after ``--`` (argparse's REMAINDER keeps the ``--``)."""
    argv = words[1:] if words and words[0] == "--" else words
    if not argv:
        raise TwinError(f"{verb}: give a command after '--', e.g. {example}")
    return argv
