"""What the integration tests ask of the machine: what the twin left on it, commands in a worker's
network namespace."""

import os
import subprocess

from twin.emulation import cleanup


def leftovers() -> dict:
    return {
        "containers": cleanup.twin_containers(),
        "bridges": cleanup.twin_bridges(),
        "interfaces": cleanup.twin_interfaces(),
        "processes": cleanup.twin_processes(),
        "namespaces": cleanup.twin_namespaces(),
    }


def ns_run(pid: int, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", "--target", str(pid), "--net"] + argv,
                          capture_output=True, text=True, timeout=timeout)


def cpu_emulated() -> bool:
    """True inside the stock-kernel guest (``make test-stock-kernel``), whose CPU is emulated in
    software: its timings are not a hardware measurement, so upper bounds on delay are loose."""
    return os.environ.get("TWIN_STOCK_KERNEL") == "1"


# How much longer a timing may take in the stock-kernel guest, whose CPU QEMU emulates (TCG):
# measured there, a port-down failover took 1.8 s against ~15 ms on the host.
EMULATED_SLACK = 10.0


# The fiber's delay is a floor: no frame arrives before it, within the delay stage's timer
# granularity.
EARLY_MS = 0.05


def early_ms(state, sites: list[str], round_trip: bool = False) -> float:
    """How much before the configured delay a frame sent along ``sites`` may arrive (ms, fabric
    time): the timer granularity, plus what delay compensation takes off the path. A compensated
    twin delivers its fastest frames up to the machine's jitter early, but never earlier than the
    configured delay less what the delay stages took off: everything else on the path costs time
    too. One way unless ``round_trip``."""
    from twin.measure.calibrate import direction_compensation
    taken_s = direction_compensation(state, sites)
    if round_trip:
        taken_s += direction_compensation(state, sites[::-1])
    return EARLY_MS + state.time.fabric_s(taken_s) * 1e3
