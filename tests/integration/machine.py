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


# Delay compensation (twin.emulation.compensation) brings the lower quartile of the round trips to
# the configured one: the fastest frames may arrive up to the machine's jitter before the fiber
# would deliver them (0.1-0.2 ms idle here). Bounds that say "never faster than light" allow this.
EARLY_MS = 0.3
