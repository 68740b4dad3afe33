"""Generic process helpers: run a command and fail in one line, run a host tool inside a worker's
network namespace, tell whether a process is alive, stop processes and
wait until they are gone, read the end of a log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

from twin.errors import TwinError

WORKLOAD_ENV = "TWIN_WORKLOAD"
T = TypeVar("T")
R = TypeVar("R")


def ns_prefix(pid: Optional[int]) -> list[str]:
    """argv prefix that runs a host tool inside a process's network namespace.

    The tool gets TWIN_WORKLOAD=1 in its environment so `twin clean` can find it: an iperf3 or
    probe started this way lives outside the worker's container, and after a kill -9 of the twin
    it outlived the container, spinning on a namespace with no interfaces at 50-60% of a core
    (found because it made later measurements on the machine miss their targets).
    """
    if pid is None:
        return []
    return ["nsenter", "--target", str(pid), "--net", "env", f"{WORKLOAD_ENV}=1"]


def run_argv(argv: list[str], check: bool = True, stdin: Optional[str] = None,
             what: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a command with its output captured as text. With ``check``, a failure is one line:
    ``what`` failed (by default the command line itself), then what the command said."""
    proc = subprocess.run(argv, capture_output=True, text=True, input=stdin)
    if check and proc.returncode != 0:
        raise TwinError(f"{what or ' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "empty log"


def alive(pid: int) -> bool:
    """Running, not a zombie (a killed child of this process stays in /proc until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return pid > 0 and stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def terminate(pids: list[int], grace_s: float = 2.0) -> None:
    """SIGTERM, then wait until each is gone (or a zombie), SIGKILL what is left after
    ``grace_s``. Returning only once they are gone is the point: a delay line still flushing its
    counters when the caller moved on was found alive by the next run's check for leftovers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.02)
        if not any(alive(p) for p in pids):
            return


def parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``fn`` over ``items`` eight at a time, results in the items' order. If any failed, the
    first failure (in that order) is raised after all have finished. For work that waits on the
    kernel or the engine."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(fn, items))

