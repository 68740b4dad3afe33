"""Time dilation: the twin runs the fabric K times slower than real, so that a small host can carry
a fabric it cannot carry in real time (time-warped network emulation, Gupta et al., NSDI 2006;
DieCast, NSDI 2008; VT-Mininet, SOSR 2015).

In a dilated run every delay the host plays is K times the fabric's, every rate 1/K of it, every
compute time and timeout K times longer, and every time the host measures is divided by K before
it is reported: a link of B/K with delay D x K looks like B and D to anything that measures it in
dilated time. What the host itself costs (a switch pass, a delay line's wake-up, a Python rank's
step) does not grow with K, so in fabric time it shrinks to 1/K: that is what dilation buys.

Two sides keep their units apart: everything the twin is told and reports is in *fabric* time
(the emulated fabric's own seconds and bit/s), and only the mechanisms (tc, the delay line,
netem, the ranks' sleeps and timeouts, the probes' pacing) see *host* time. This class is the one
place that converts.

What does not scale (kernel constants the twin cannot reach per route): TCP's delayed-ACK timer
(40-200 ms), the initial RTO of a new connection (1 s) and CUBIC's window growth, which is a
function of wall-clock time since the last loss; Linux lets a route set ``rto_min``, which the
twin scales. Rows where congestion and loss drive the result (best effort under interference,
loss sweeps) are the ones these affect.
"""

from __future__ import annotations

from dataclasses import dataclass

LINUX_RTO_MIN_S = 0.2  # TCP_RTO_MIN: the minimum retransmission timeout of every Linux route
MAX_DILATION = 64.0  # beyond this a 1 s fabric iteration takes over a minute of host time


@dataclass(frozen=True)
class Dilation:
    """Fabric time <-> host time for a dilation factor ``k`` (1: real time)."""

    k: float = 1.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.k <= MAX_DILATION:
            raise ValueError(f"time dilation must be in [1, {MAX_DILATION:g}], not {self.k:g}")

    def host_s(self, fabric_s: float) -> float:
        """A fabric duration (delay, compute, timeout) as the host must play it."""
        return fabric_s * self.k

    def fabric_s(self, host_s: float) -> float:
        """A duration the host measured, in the fabric's time."""
        return host_s / self.k

    def host_bps(self, fabric_bps: float) -> float:
        """A fabric rate as the host's mechanisms carry it."""
        return fabric_bps / self.k

    def fabric_bps(self, host_bps: float) -> float:
        """A rate the host measured, in the fabric's time."""
        return host_bps * self.k

    @property
    def rto_min_s(self) -> float:
        """The workers' per-route minimum retransmission timeout, in host time."""
        return LINUX_RTO_MIN_S * self.k

    def describe(self) -> str:
        return "real time" if self.k == 1 else f"time dilated x{self.k:g} (times in fabric time)"


REAL_TIME = Dilation()
