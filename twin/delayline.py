"""Build and locate the delay-line program (``twin/delayline.c``).

The delay line is the long-haul fiber where the kernel has no netem: one process per WAN link
that holds every frame for the link's propagation delay (see the C source for how and why it is
C). It is compiled once per source version into the twin's cache, at ``twin setup`` and, if
missing, on first use, so a fresh clone needs nothing but gcc (installed by ``make setup``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from twin import paths
from twin.errors import TwinError

SOURCE = Path(__file__).with_name("delayline.c")
PROGRAM = "twin-delayline"  # also the marker `twin clean` looks for in process command lines
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]


@functools.lru_cache(maxsize=None)
def binary_path() -> Path:
    """Hash-versioned, computed once per process (every WAN link's start asks for it)."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    return paths.cache_dir() / "bin" / f"{PROGRAM}-{digest}"


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
