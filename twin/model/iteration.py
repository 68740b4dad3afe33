"""One training iteration in the model: bucketed gradient all-reduce overlapped with the backward
pass, and efficiency against the equal-compute single site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

from traffic.collectives import ALLREDUCE_ALGOS
from twin.model.costs import allreduce_time
from twin.model.fabric import Fabric
from twin.spec.schedule import Schedule


@dataclass(frozen=True)
class Iteration:
    forward: float  # s
    backward: float  # s
    optimizer: float  # s
    buckets: tuple[float, ...]  # gradient bucket sizes in bytes, in the order backward produces them
    overlap: bool = True

    @classmethod
    def of(cls, sched: Schedule) -> "Iteration":
        """The model's view of a training schedule: its times, buckets and overlap."""
        return cls(sched.forward, sched.backward, sched.optimizer, tuple(sched.buckets),
                   sched.overlap)

    @property
    def compute(self) -> float:
        return self.forward + self.backward + self.optimizer


@dataclass(frozen=True)
class IterationPrediction:
    iteration: float
    compute: float
    communication: float  # sum of all-reduce times
    exposed: float  # communication not hidden behind backward compute

    @property
    def efficiency(self) -> float:
        """eta = T_compute / (T_compute + T_exposed)."""
        return self.compute / (self.compute + self.exposed)


def ready_times(it: Iteration) -> list[float]:
    """When each bucket's gradient exists: backward produces them at a uniform rate (overlap),
    or all of them at its end."""
    total = sum(it.buckets) or 1.0
    end_bwd = it.forward + it.backward
    ready, produced = [], 0.0
    for b in it.buckets:
        produced += b
        ready.append(it.forward + it.backward * produced / total if it.overlap else end_bwd)
    return ready


def iteration_time(it: Iteration, comm_time, sequence=None) -> IterationPrediction:
    """Schedule the buckets: bucket j starts when backward has produced it and the previous
    all-reduce is done (without overlap, all start after backward).

    ``sequence(sizes, ready)``, when given, returns when the last all-reduce ends with ranks
    running the buckets back to back without a barrier (twin/pipelining.py); otherwise each
    all-reduce takes ``comm_time(size)`` after the previous one ends.
    """
    ready = ready_times(it)
    end_bwd = it.forward + it.backward
    comm = sum(comm_time(b) for b in it.buckets)
    if sequence is not None and it.buckets:
        t = sequence(list(it.buckets), ready)
    else:
        t = 0.0
        for b, r in zip(it.buckets, ready):
            t = max(t, r) + comm_time(b)
    iteration = max(end_bwd, t) + it.optimizer
    return IterationPrediction(iteration, it.compute, comm, iteration - it.compute)


def buckets(total_bytes: float, bucket_bytes: float) -> tuple[float, ...]:
    """Split a gradient into DDP-style buckets (last one partial)."""
    if total_bytes <= 0:
        return ()
    n = max(1, math.ceil(total_bytes / bucket_bytes))
    full = [bucket_bytes] * (n - 1)
    return tuple(full + [total_bytes - bucket_bytes * (n - 1)])


def predict(algo: str, f: Fabric, it: Iteration) -> IterationPrediction:
    """Ring and hierarchical buckets pipeline rank by rank (twin/pipelining.py: on ci-2site,
    adding up isolated rings predicted a 25 Mbit/s WAN's iterations up to 5.9% too slow); the
    tree over real paths is replayed rank by rank (twin/model/flows.py); halving-doubling, and
    the tree on a two-tier fabric, are added up bucket after bucket."""
    from twin.model import flows, pipelining
    sequence = (partial(pipelining.sequence_finish, algo, f) if algo in pipelining.OPS else None)
    if algo == "tree" and f.paths is not None and f.sites > 1:
        sequence = partial(flows.tree_sequence, f)  # each rank takes the next bucket when done
    return iteration_time(it, lambda b: allreduce_time(algo, f, b), sequence)


def best_single_site(f: Fabric, it: Iteration) -> tuple[str, IterationPrediction]:
    """The single data centre runs its best algorithm: that is what a claim is measured against."""
    one = f.single_site()
    return min(((a, predict(a, one, it)) for a in ALLREDUCE_ALGOS), key=lambda x: x[1].iteration)


def efficiency_vs_single_site(algo: str, f: Fabric, it: Iteration
                              ) -> tuple[float, IterationPrediction, IterationPrediction]:
    """(single-site iteration / spread iteration, spread prediction, single-site prediction)."""
    spread = predict(algo, f, it)
    _, single = best_single_site(f, it)
    return single.iteration / spread.iteration, spread, single

