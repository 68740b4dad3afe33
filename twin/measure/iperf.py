"""iperf3 run from the host inside workers' network namespaces, and its JSON result.
"""

from __future__ import annotations

import json
import subprocess
import time

from twin.emulation.state import WorkerInfo
from twin.host.processes import ns_prefix

IPERF_PORT = 5399


def parse_iperf3(text: str) -> tuple[float, int]:
    """(received bit/s, retransmits) from iperf3 -J output."""
    data = json.loads(text)
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    end = data["end"]
    return float(end["sum_received"]["bits_per_second"]), int(end["sum_sent"].get("retransmits", 0))


def iperf(src: WorkerInfo, dst: WorkerInfo, seconds: float, port: int = IPERF_PORT,
          streams: int = 1) -> tuple[float, int]:
    server = subprocess.Popen(ns_prefix(dst.pid) + ["iperf3", "-s", "-1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        proc = subprocess.run(
            ns_prefix(src.pid) + ["iperf3", "-c", dst.ip, "-p", str(port), "-t", str(seconds),
                                  "-P", str(streams), "-J", "-O", "1"],
            capture_output=True, text=True, timeout=seconds + 30)
        return parse_iperf3(proc.stdout)
    finally:
        server.kill()
        server.wait()

