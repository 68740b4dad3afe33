"""Provenance: the commit of the code that made a result, recorded in every row it writes."""

from __future__ import annotations

import subprocess

from twin.host import rundirs

CODE_PATHS = ("twin", "traffic", "controllers", "topologies", "campaigns", "benchmarks", "scripts",
              "pyproject.toml", "requirements.lock", "Makefile")


def git_commit() -> str:
    """Short commit of the code that made a row, with "+dirty" if a tracked file that can change
    a measurement (code, topologies, campaigns, set-up) differs from it: a row must never claim
    code it was not made with. Results and docs do not count."""
    root = rundirs.project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=root).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                  *CODE_PATHS], capture_output=True, text=True,
                                 cwd=root).stdout.strip()
    except OSError:
        return ""
    return f"{head}+dirty" if head and changed else head
