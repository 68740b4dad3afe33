"""The efficiency experiment: the same job on the equal-compute single site and spread over sites.

Efficiency = single-site iteration time / spread iteration time (same workers, same schedule),
measured on the live twin and predicted by the analytic model side by side, per algorithm and
with or without overlap of gradient all-reduce with the backward pass.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

from twin.drive.replay import run_training
from twin.emulation import runtime
from twin.measure.hostload import host_columns
from twin.model.fabric import fabric_from_topology
from twin.model.iteration import Iteration, predict
from twin.spec.schedule import Schedule
from twin.spec.topology import Topology, single_site

Progress = Callable[[str], None]


@dataclass
class EfficiencyRow:
    topology: str
    layout: str  # 'single-site' or 'spread'
    sites: int
    workers: int
    span_km: float
    algo: str
    overlap: bool
    iterations: int
    measured_iteration_s: float  # median over iterations
    measured_exposed_s: float
    model_iteration_s: float
    model_error: float  # (measured - model) / model
    compute_s: float
    measured_efficiency: float  # single-site / this layout (1.0 for the single site itself)
    model_efficiency: float
    gradient_bytes_emulated: int
    scale: str
    mechanism: str
    host_cpu_saturated_share: float = 0.0  # the replay's samples with the CPUs >= 95% busy
    host_bound: bool = False  # any of measure.hostload's three witnesses says so
    line_late_share: Optional[float] = None  # the delay lines' frames >= 0.5 ms late (None: netem)
    line_late_p99_ms: Optional[float] = None
    generator_cpu_share: Optional[float] = None  # the busiest rank's CPU over its iterations
    host: str = ""  # the printed verdict


def _model_iteration(topo: Topology, sched: Schedule, algo: str, alpha_lan: float) -> float:
    return predict(algo, fabric_from_topology(topo, alpha_lan), Iteration.of(sched)).iteration


def run_layout(topo: Topology, path: str, sched_real: Schedule, algos: list[str],
               overlaps: list[bool], iterations: int, alpha_lan: float,
               progress: Progress) -> list[EfficiencyRow]:
    """Bring one layout up, replay every (algo, overlap) combination, tear it down."""
    sched = sched_real.scaled(topo.scale.bandwidth)
    layout = "single-site" if len(topo.sites) == 1 else "spread"
    rows = []
    _, state = runtime.up(topo, path, "none", progress)
    try:
        for algo in algos:
            for overlap in overlaps:
                progress(f"{layout}: {algo}, overlap {'on' if overlap else 'off'}, "
                         f"{iterations} iterations")
                s = sched.model_copy(update={"overlap": overlap})
                res = run_training(state, s, algo, iterations=iterations)
                measured = statistics.median(r.iteration_s for r in res)
                model = _model_iteration(topo, s, algo, alpha_lan)
                rows.append(EfficiencyRow(
                    topology=topo.name, layout=layout, sites=len(topo.sites),
                    workers=len(state.workers), span_km=round(topo.span_km(), 1), algo=algo,
                    overlap=overlap, iterations=iterations,
                    measured_iteration_s=round(measured, 4),
                    measured_exposed_s=round(statistics.median(r.exposed_s for r in res), 4),
                    model_iteration_s=round(model, 4), model_error=round((measured - model) / model, 4),
                    compute_s=round(s.compute, 4), measured_efficiency=1.0, model_efficiency=1.0,
                    gradient_bytes_emulated=sum(s.buckets), scale=topo.scale.describe(),
                    mechanism=state.mechanism, **host_columns(res[0].host)))
    finally:
        runtime.down()
    return rows


def efficiency(topo: Topology, path: str, sched_real: Schedule, algos: list[str],
               overlaps: list[bool], iterations: int = 3, alpha_lan: float = 2e-4,
               progress: Progress = lambda s: None) -> list[EfficiencyRow]:
    """Single site (ring, the bandwidth-optimal flat algorithm) vs spread, every combination."""
    one = single_site(topo)
    t0 = time.monotonic()
    single = run_layout(one, path, sched_real, ["ring"], overlaps, iterations, alpha_lan, progress)
    spread = run_layout(topo, path, sched_real, algos, overlaps, iterations, alpha_lan, progress)
    ref = {r.overlap: r for r in single}
    for r in spread:
        base = ref[r.overlap]
        r.measured_efficiency = round(base.measured_iteration_s / r.measured_iteration_s, 4)
        r.model_efficiency = round(base.model_iteration_s / r.model_iteration_s, 4)
    progress(f"efficiency experiment done in {time.monotonic() - t0:.0f} s")
    return single + spread
