"""Where the twin keeps its runtime state, logs and images' inputs.

Everything a run creates is named with one prefix and recorded under one run directory, so
``twin clean`` can always find and remove it, even after ``kill -9``.
"""

from __future__ import annotations

import os
from pathlib import Path

LABEL = "fabric-twin"  # Docker label and OVS external-id key on everything the twin creates


def prefix() -> str:
    """Prefix of every interface and bridge the twin creates (kept short: IFNAMSIZ is 15)."""
    return os.environ.get("TWIN_PREFIX", "tw")


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def run_dir() -> Path:
    d = Path(os.environ.get("TWIN_RUN_DIR", "/run/twin"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def log_dir() -> Path:
    d = run_dir() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def state_file() -> Path:
    return run_dir() / "state.json"


def cache_dir() -> Path:
    d = Path(os.environ.get("TWIN_CACHE_DIR", "/var/cache/twin"))
    d.mkdir(parents=True, exist_ok=True)
    return d
