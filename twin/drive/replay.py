"""Training-iteration replay across the twin: schedules, the Chakra importer, and the runner.

A schedule describes one iteration (forward, backward and optimizer durations; gradient buckets
all-reduced during the backward pass). It comes from a YAML/JSON file, from a model description
(parameters, dtype, bucket size, compute time, model-parallel ways), or from a Chakra-style
execution trace. Sizes are real; the topology's bandwidth scale shrinks them for the emulation,
so communication keeps its real duration and compute durations stay real too.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from dataclasses import dataclass, field
from typing import Optional

from twin.drive.ranks import launch_ranks
from twin.emulation.state import TwinState
from twin.errors import TwinError
from twin.measure.hostload import HostLoad, LoadSummary, summarize
from twin.spec.schedule import Schedule


@dataclass
class IterationResult:
    iteration: int
    iteration_s: float
    compute_s: float
    comm_s: float
    exposed_s: float
    wrong: int
    host_saturated_share: float = 0.0  # of the whole replay's host-load samples (twin.measure.hostload)
    host: LoadSummary = field(default_factory=lambda: summarize([]))  # the three witnesses'


def run_training(state: TwinState, sched: Schedule, algo: str, iterations: int = 3,
                 warmup: int = 1, conns: int = 1, check: bool = False, timeout: float = 60.0,
                 workers: Optional[list[str]] = None) -> list[IterationResult]:
    """Run the (already scaled) schedule on every worker; per iteration the slowest rank counts.
    Under time dilation the ranks compute K times longer and wait K times longer (host time),
    and every duration reported is divided by K (twin.plan.dilation)."""
    time_ = state.time
    timeout = time_.host_s(timeout)
    payload = {"forward_s": time_.host_s(sched.forward), "backward_s": time_.host_s(sched.backward),
               "optimizer_s": time_.host_s(sched.optimizer), "buckets": sched.buckets, "ready": sched.ready,
               "overlap": sched.overlap, "algo": algo, "iterations": iterations,
               "warmup": warmup, "check": check}
    budget = (warmup + iterations) * (time_.host_s(sched.compute) + 10 * timeout) + 60
    outs = []
    with HostLoad.of(state) as load, launch_ranks(state, "traffic.train",
                      ["--schedule", json.dumps(payload), "--conns", str(conns),
                       "--timeout", str(timeout)], workers) as ranks:
        for i, (w, p) in enumerate(zip(ranks.members, ranks.procs)):
            try:
                out, err = p.communicate(timeout=max(1.0, budget))
            except subprocess.TimeoutExpired:
                raise TwinError(f"training replay: rank {i} ({w.name}) did not finish") from None
            lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            errs = [r["error"] for r in lines if "error" in r]
            if p.returncode != 0 or errs:
                why = errs[0] if errs else (err.strip().splitlines() or ["no output"])[-1]
                raise TwinError(f"training replay: rank {i} ({w.name}): {why}")
            outs.append(lines)
    results = []
    # the generator's share: each rank's CPU over all its timed iterations (compute included,
    # which sleeps), the busiest rank counting
    host = load.summary.with_generator(
        [sum(r["cpu_s"] for r in o) / sum(r["iteration_s"] for r in o) for o in outs
         if o and all("cpu_s" in r for r in o) and sum(r["iteration_s"] for r in o) > 0])
    for k in range(iterations):
        per = [o[k] for o in outs]
        results.append(IterationResult(
            iteration=k, iteration_s=time_.fabric_s(max(r["iteration_s"] for r in per)),
            compute_s=time_.fabric_s(per[0]["compute_s"]),
            comm_s=time_.fabric_s(statistics.mean(r["comm_s"] for r in per)),
            exposed_s=time_.fabric_s(max(r["exposed_s"] for r in per)),
            wrong=sum(r["wrong"] for r in per) if check else -1,
            host_saturated_share=round(host.saturated_share, 3), host=host))
    return results
