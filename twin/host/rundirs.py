"""Where the twin keeps its runtime state, logs and images' inputs.

Everything a run creates is named with one prefix and recorded under one run directory, so
``twin clean`` can always find and remove it, even after ``kill -9``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

LABEL = "fabric-twin"  # Docker label and OVS external-id key on everything the twin creates
KEEP_RUNS = 20  # run folders kept under runs_dir(); older ones are removed when a new run starts

_run_logs: Optional[Path] = None  # the running twin's folder, once known to this process


def prefix() -> str:
    """Prefix of every interface and bridge the twin creates (kept short: IFNAMSIZ is 15)."""
    return os.environ.get("TWIN_PREFIX", "tw")


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def run_dir() -> Path:
    d = Path(os.environ.get("TWIN_RUN_DIR", "/run/twin"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def traces_dir() -> Path:
    """Where ``twin trace`` writes its captures while it runs (one scratch folder per trace)."""
    return run_dir() / "traces"


def runs_dir() -> Path:
    """One folder per twin run, named by its run id, for what outlives the run: the controller's
    and the delay lines' logs (a crashed or failed run's are what one reads first)."""
    return Path(os.environ.get("TWIN_RUNS_DIR", project_root() / "results" / "runs"))


def open_run_logs(run_id: str) -> Path:
    """Create the new run's folder and make it this process's log_dir(); prune old runs."""
    global _run_logs
    root = runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    old = sorted(p for p in root.iterdir() if p.is_dir())  # run ids start with their time
    for p in old[:max(0, len(old) - (KEEP_RUNS - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    _run_logs = root / run_id
    _run_logs.mkdir(exist_ok=True)
    return _run_logs


def use_run_logs(folder: Optional[str]) -> None:
    """Log into a running twin's folder (commands on a detached twin), or None: no twin."""
    global _run_logs
    _run_logs = Path(folder) if folder else None


def log_dir() -> Path:
    """The running twin's folder; outside a twin (e.g. a bare delay line in a test) the run dir."""
    d = _run_logs or run_dir() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def state_file() -> Path:
    return run_dir() / "state.json"


def cache_dir() -> Path:
    d = Path(os.environ.get("TWIN_CACHE_DIR", "/var/cache/twin"))
    d.mkdir(parents=True, exist_ok=True)
    return d
