"""Build and locate the delay-line program (``twin/delayline.c``), and read how on time it was.

The delay line is the long-haul fiber where the kernel has no netem: one process per WAN link
that holds every frame for the link's propagation delay (see the C source for how and why it is
C). It is compiled once per source version into the twin's cache, at ``twin setup`` and, if
missing, on first use, so a fresh clone needs nothing but gcc (installed by ``make setup``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast

from twin.emulation.tc import Shaping
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.processes import terminate

SOURCE = Path(__file__).with_name("delayline.c")
PROGRAM = "twin-delayline"  # also the marker `twin clean` looks for in process command lines
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]


@functools.lru_cache(maxsize=None)
def binary_path() -> Path:
    """Hash-versioned, computed once per process (every WAN link's start asks for it)."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    return rundirs.cache_dir() / "bin" / f"{PROGRAM}-{digest}"


def ensure_built() -> Path:
    """Path of the compiled delay line, compiling it first if this source version has no binary."""
    target = binary_path()
    if target.exists():
        return target
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise TwinError("no C compiler to build the delay line (twin/delayline.c); run 'make setup' "
                        "(apt-get install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    proc = subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(SOURCE), "-lm"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
        raise TwinError(f"building the delay line failed: {first}")
    os.replace(tmp, target)  # atomic: concurrent builders never see a half-written binary
    return target


LATE_THRESHOLD_US = 512  # "late": released half a millisecond or more after its due time


STATS_TIMEOUT_S = 2.0


def read_stats(params_file: str, pid: int) -> dict:
    """The running delay line's counters and lateness histogram, dumped on request (SIGUSR1)."""
    path = Path(params_file + ".stats")
    before = _load(path).get("dumps", 0)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + STATS_TIMEOUT_S
    while time.monotonic() < deadline:
        stats = _load(path)
        if stats.get("dumps", 0) > before:
            return stats
        time.sleep(0.01)
    raise TwinError(f"delay line pid {pid} did not report its counters within {STATS_TIMEOUT_S:.0f} s")


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def lateness(before: dict, after: dict) -> dict:
    """How late the frames released between two ``read_stats`` were: p99 and p99.9 as the upper
    edge of their power-of-two bucket (so never flattering), and the share of frames released
    LATE_THRESHOLD_US or more after their due time."""
    old = before.get("late_hist_pow2_us") or [0] * len(after["late_hist_pow2_us"])
    hist = [a - b for a, b in zip(after["late_hist_pow2_us"], old)]
    frames = sum(hist)

    def upper_ms(q: float) -> float:
        seen = 0
        for k, count in enumerate(hist):
            seen += count
            if seen >= q * frames:
                return (1 << k) / 1000
        return (1 << (len(hist) - 1)) / 1000

    late = sum(c for k, c in enumerate(hist) if k >= 1 and (1 << (k - 1)) >= LATE_THRESHOLD_US)
    return {"frames": frames,
            "late_p99_ms": upper_ms(0.99) if frames else 0.0,
            "late_p999_ms": upper_ms(0.999) if frames else 0.0,
            "late_share": late / frames if frames else 0.0}


_delayline_cpu = itertools.count()


# SCHED_FIFO priority of delay lines (see delayline.c): above every time-shared process, below
# the kernel's own real-time threads (which use 50 and up).
DELAYLINE_RT_PRIORITY = 10


class DelayLineParams(TypedDict):
    """The parameter file the program reads (see delayline.c), as JSON: what the fiber does now."""

    delay_s: float
    jitter_s: float
    loss: float
    down: bool
    rate_bps: float
    class_dscps: list[int]
    # the host's own floor taken off each frame (see tc.Compensation), and the sites of the ends
    comp_first_s: float
    comp_transit_ab_s: float
    comp_transit_ba_s: float
    site_a: int
    site_b: int


@dataclass
class DelayLineSpec:
    """Everything needed to find, change or stop one delay-line process; part of the run's state
    (WanInfo.delayline), so detached commands reach the process bring-up started."""

    name: str
    end_a: str
    end_b: str
    params_file: str
    pid: int
    params: DelayLineParams

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DelayLineSpec":
        """The inverse of ``dataclasses.asdict``: how the state file holds it."""
        return cls(**{**d, "params": cast(DelayLineParams, dict(d["params"]))})


def delayline_params(shaping: Shaping) -> DelayLineParams:
    """The program's parameters for a link shaped so. ``down`` holds the whole line down: a
    mid-span cut (runtime.set_link_span), which the switch ports do not see."""
    return {"delay_s": shaping.delay_s, "jitter_s": shaping.jitter_s, "loss": shaping.loss,
            "down": shaping.down, "rate_bps": shaping.rate_bps or 0,
            "class_dscps": list(shaping.class_dscps),
            "comp_first_s": shaping.compensation.first_s,
            "comp_transit_ab_s": shaping.compensation.transit_ab_s,
            "comp_transit_ba_s": shaping.compensation.transit_ba_s,
            "site_a": shaping.compensation.site_a, "site_b": shaping.compensation.site_b}


def start_delayline(name: str, end_a: str, end_b: str, params: DelayLineParams
                    ) -> DelayLineSpec:
    """Spawn a delay line in its own session so it outlives the process that started it."""
    run_dir = rundirs.run_dir()
    params_file = run_dir / "links" / f"{name}.json"
    params_file.parent.mkdir(parents=True, exist_ok=True)
    params_file.write_text(json.dumps(params))
    program = ensure_built()
    log = open(rundirs.log_dir() / f"delayline-{name}.log", "ab")
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[next(_delayline_cpu) % len(cpus)]  # spread the links, one CPU each (no reordering)
    proc = subprocess.Popen(
        [str(program), "--a", end_a, "--b", end_b, "--params", str(params_file), "--cpu", str(cpu),
         "--rt", str(DELAYLINE_RT_PRIORITY)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return DelayLineSpec(name, end_a, end_b, str(params_file), proc.pid, params)


def update_delayline(spec: DelayLineSpec, params: DelayLineParams) -> None:
    """Write new parameters and tell the process to re-read them (no frame in flight is lost)."""
    tmp = Path(spec.params_file + ".tmp")
    tmp.write_text(json.dumps(params))
    os.replace(tmp, spec.params_file)
    spec.params = params
    os.kill(spec.pid, signal.SIGHUP)


def stop_delayline(spec: DelayLineSpec) -> None:
    """Stop the line and return once it is gone (its counters printed to its log)."""
    terminate([spec.pid])

