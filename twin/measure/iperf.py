"""TCP goodput between two workers as calibration measures it: iperf3 (see
twin.drive.crosstraffic), the first second left out so that TCP's slow start does not count.
"""

from __future__ import annotations

from twin.drive.crosstraffic import start_flow
from twin.emulation.state import WorkerInfo

IPERF_PORT = 5399
OMIT_S = 1  # seconds of slow start iperf3 runs but leaves out of the result


def iperf(src: WorkerInfo, dst: WorkerInfo, seconds: float, port: int = IPERF_PORT,
          streams: int = 1) -> tuple[float, int]:
    """(received bit/s, retransmits) of ``streams`` TCP connections for ``seconds``."""
    return start_flow(src, dst, port, seconds=seconds, streams=streams, omit=OMIT_S).result()
