"""The stock-kernel mechanisms: netem links, the OVS kernel datapath, systemd's daemons.

They run where the kernel has sch_netem and the openvswitch module: a network engineer's VM, and
the Debian 12 stock-kernel guest that ``make test-stock-kernel`` boots here. Elsewhere they
skip, except under TWIN_STOCK_KERNEL=1 (set inside that guest), where a missing mechanism is a
failure, not a skip.

They check mechanisms and correctness, never this machine's fidelity targets: in the guest the
CPU is emulated in software (TCG), so its timings are not a hardware measurement and delays
are held to loose bounds only (never earlier than configured; not hugely later).
"""

from __future__ import annotations

import math
import os
import re
import subprocess

import pytest

from twin.host import capabilities
from twin.units import parse_time

# Queueing and the emulated CPU may add to a delay, never take from it: the lower bound is tight
# (tests.integration.machine.early_ms: the kernel timer's granularity and what delay compensation
# takes off), the upper one only catches a delay that is not applied.
LOOSE_MS = 5.0


@pytest.fixture(scope="session", autouse=True)
def stock_kernel(daemons):
    missing = []
    if capabilities.link_mechanism() != "netem":
        missing.append("sch_netem")
    if capabilities.ovs_datapath() != "kernel":
        missing.append("the openvswitch kernel module")
    if missing:
        why = (f"needs a kernel with {' and '.join(missing)} "
               "(make test-stock-kernel boots Debian 12's stock kernel for these)")
        if os.environ.get("TWIN_STOCK_KERNEL") == "1":
            pytest.fail(f"TWIN_STOCK_KERNEL=1 but this machine lacks: {', '.join(missing)}")
        pytest.skip(why)


def run(argv: list[str], timeout: float = 120) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr.strip()}"
    return proc.stdout


def tc_time_close(shown_s: float, expected_s: float) -> bool:
    """A time as tc prints it (three significant digits, iproute2's sprint_time64) against the
    value the twin asked for, in whole microseconds as netem_args gives it: within one unit of
    the last digit shown. Not half a unit: the value passes the kernel's own units before tc
    prints it, and the guest showed 6.46ms for a 6,466 us delay (and 6.39ms for 6,395 us).
    One unit (10 us at 6 ms) still tells a delay with its compensation (~300 us) from one
    without."""
    expected_s = round(expected_s * 1e6) / 1e6
    if expected_s <= 0:
        return shown_s == 0
    digit = 10 ** (math.floor(math.log10(expected_s)) - 2)
    return abs(shown_s - expected_s) <= digit + 1e-9


def netem_delays(dev: str, netns_pid: int | None = None) -> dict[str, dict]:
    """netem qdiscs on ``dev``: handle -> {'parent', 'delay_s', 'jitter_s', 'line'}, read back
    from the kernel (``tc qdisc show``)."""
    prefix = ["nsenter", "--target", str(netns_pid), "--net"] if netns_pid else []
    out = run(prefix + ["tc", "qdisc", "show", "dev", dev])
    found = {}
    for line in out.splitlines():
        m = re.match(r"qdisc netem (\S+) (root|parent (\S+))", line)
        if not m:
            continue
        d = re.search(r"delay (\S+)(?:\s+(\d[\d.]*\w*s))?", line)
        found[m.group(1)] = {"parent": m.group(3) or "root", "line": line,
                             "delay_s": parse_time(d.group(1)) if d else 0.0,
                             "jitter_s": parse_time(d.group(2)) if d and d.group(2) else 0.0}
    return found
