"""Full-scale predictions, no emulation: one data-parallel training job spread over M sites, for
every combination of site count, fiber distance, WAN rate, all-reduce algorithm and overlap,
against the same ranks in one data centre (``twin model``).

The job is what a user knows about a model (parameters, precision, model-parallel ways, compute
per iteration); the fabric is two-tier (site LAN / WAN) with one WAN step costing the fiber's
one-way propagation plus the LAN's per-step latency.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from twin.model.fabric import Fabric
from twin.model.iteration import Iteration, buckets, efficiency_vs_single_site
from twin.spec.schedule import DTYPE_BYTES
from twin.spec.topology import FIBER_US_PER_KM
from twin.units import parse_rate

ROUNDED = ("iteration_s", "exposed_s", "single_site_s", "efficiency")  # 4 decimals in the CSV


def parse_params(text: str) -> float:
    """Parameter count: ``175B`` (1.75e11), ``350M``, or a plain number."""
    try:
        return float(text.upper().replace("B", "e9").replace("M", "e6"))
    except ValueError:
        raise ValueError(f"{text!r} is not a parameter count; use e.g. 175B, 350M or 1.3e9") from None


@dataclass(frozen=True)
class Job:
    """One data-parallel replica's iteration: forward is a third of the compute, backward the
    rest less the optimizer step; the gradient (the model-parallel rank's share) is all-reduced
    in DDP-style buckets as backward produces it."""

    params: float
    dtype: str  # bf16 | fp16 | fp32
    model_parallel: int  # tensor x pipeline ways: divides the gradient each rank all-reduces
    compute_s: float  # per iteration
    optimizer_s: float
    bucket_mib: float

    @property
    def gradient_bytes(self) -> float:
        return self.params * DTYPE_BYTES[self.dtype] / self.model_parallel

    def iteration(self, overlap: bool) -> Iteration:
        return Iteration(forward=self.compute_s / 3,
                         backward=self.compute_s * 2 / 3 - self.optimizer_s,
                         optimizer=self.optimizer_s,
                         buckets=buckets(self.gradient_bytes, self.bucket_mib * 2**20), overlap=overlap)


@dataclass(frozen=True)
class FullScaleRow:
    """One point of the sweep; rates as given (``400Gbit``), times in seconds, unrounded."""

    params: float
    dtype: str
    sites: int
    per_site: int
    distance_km: float
    wan_rate: str
    lan_rate: str
    algo: str
    overlap: bool
    iteration_s: float
    exposed_s: float
    single_site_s: float
    efficiency: float  # single-site iteration / spread iteration

    def rounded(self) -> FullScaleRow:
        """As the CSV stores it."""
        return replace(self, **{k: round(getattr(self, k), 4) for k in ROUNDED})


def fabric(sites: int, per_site: int, lan_rate: str, wan_rate: str, distance_km: float,
           alpha_lan: float) -> Fabric:
    """Every WAN step pays the fiber's one-way propagation on top of the LAN's step latency."""
    return Fabric(sites, per_site, parse_rate(lan_rate), parse_rate(wan_rate), alpha_lan,
                  distance_km * FIBER_US_PER_KM * 1e-6 + alpha_lan)


def sweep(job: Job, sites: list[int], per_site: int, distances_km: list[float], wan_rates: list[str],
          lan_rate: str, algos: list[str], alpha_lan: float) -> list[FullScaleRow]:
    """Rows in the order sites, distance, WAN rate, algorithm, overlap (with, then without)."""
    rows = []
    for m in sites:
        for km in distances_km:
            for wan in wan_rates:
                f = fabric(m, per_site, lan_rate, wan, km, alpha_lan)
                for algo in algos:
                    for overlap in (True, False):
                        eff, spread, single = efficiency_vs_single_site(algo, f, job.iteration(overlap))
                        rows.append(FullScaleRow(job.params, job.dtype, m, per_site, km, wan, lan_rate,
                                                 algo, overlap, spread.iteration, spread.exposed,
                                                 single.iteration, eff))
    return rows
