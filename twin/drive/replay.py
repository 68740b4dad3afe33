"""Training-iteration replay across the twin: a schedule's iterations, or a Chakra trace's graph.

A schedule (twin.spec.schedule) describes one iteration: forward, backward and optimizer
durations, gradient buckets all-reduced during the backward pass (traffic.train). A Chakra
trace (twin.spec.chakra) is one execution graph per rank: compute, collectives of every type
the twin has, dependencies between them (traffic.graph_replay). Sizes are real; the topology's
bandwidth scale shrinks them for the emulation, so communication keeps its real duration and
compute durations stay real too. Under time dilation the ranks compute K times longer and wait K
times longer (host time), and every duration reported is divided by K (twin.plan.dilation).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from twin.drive.ranks import launch_ranks, send_windows
from twin.emulation.state import TwinState
from twin.errors import TwinError
from twin.measure.hostload import HostLoad, LoadSummary, host_columns, summarize
from twin.spec.chakra import TraceJob
from twin.spec.schedule import Schedule

# Linux takes at most 128 KiB per command-line argument (MAX_ARG_STRLEN): a rank's graph goes in
# parts of this many characters, several arguments (all of them together within the 2 MiB of a
# command line: a trace at its limits, twin.spec.chakra, makes about 0.4 MB).
ARG_PART_CHARS = 100_000


@dataclass
class IterationResult:
    iteration: int
    iteration_s: float
    compute_s: float
    comm_s: float
    exposed_s: float
    wrong: int
    host: LoadSummary = field(default_factory=lambda: summarize([]))  # the three witnesses'

    @property
    def host_saturated_share(self) -> float:
        """Of the whole replay's host-load samples, the share with the CPUs saturated."""
        return round(self.host.saturated_share, 3)


def run_training(state: TwinState, sched: Schedule, algo: str, iterations: int = 3,
                 warmup: int = 1, conns: int = 1, check: bool = False, timeout: float = 60.0,
                 workers: Optional[list[str]] = None) -> list[IterationResult]:
    """Run the (already scaled) schedule on every worker; per iteration the slowest rank counts."""
    time_ = state.time
    payload = {"forward_s": time_.host_s(sched.forward), "backward_s": time_.host_s(sched.backward),
               "optimizer_s": time_.host_s(sched.optimizer), "buckets": sched.buckets, "ready": sched.ready,
               "overlap": sched.overlap, "algo": algo, "iterations": iterations,
               "warmup": warmup, "check": check}
    argv = ["--schedule", json.dumps(payload)]
    outs, host = _run_ranks(state, "traffic.train", argv, lambda i: [], sched.compute,
                            warmup + iterations, conns, timeout, workers)
    results = []
    for k in range(iterations):
        per = [o[k] for o in outs]
        results.append(IterationResult(
            iteration=k, iteration_s=time_.fabric_s(max(r["iteration_s"] for r in per)),
            compute_s=time_.fabric_s(per[0]["compute_s"]),
            comm_s=time_.fabric_s(statistics.mean(r["comm_s"] for r in per)),
            exposed_s=time_.fabric_s(max(r["exposed_s"] for r in per)),
            wrong=sum(r["wrong"] for r in per) if check else -1, host=host))
    return results


def graph_of(job: TraceJob, rank: int, scale: float, host_s: Callable[[float], float]) -> dict:
    """Rank ``rank``'s graph as traffic.graph_replay takes it: nodes in dependency order, deps as
    indices, compute in host seconds, collective sizes as emulated (TraceNode.emulated_bytes)."""
    trace = job.ranks[rank]
    index = {n.id: i for i, n in enumerate(trace.nodes)}
    nodes: list[list] = []
    for n in trace.nodes:
        deps = [index[d] for d in n.deps]
        if n.kind == "compute":
            nodes.append(["compute", host_s(n.duration_s), deps])
        elif n.kind == "metadata":
            nodes.append(["metadata", 0, deps])
        else:
            nodes.append([n.op, n.emulated_bytes(scale), deps])
    return {"nodes": nodes, "compute_s": host_s(trace.compute_s)}


def graph_arguments(graph: dict) -> list[str]:
    """``--graph PART`` for each part of the graph's JSON (ARG_PART_CHARS each at most)."""
    text = json.dumps(graph, separators=(",", ":"))
    out: list[str] = []
    for a in range(0, len(text), ARG_PART_CHARS):
        out += ["--graph", text[a:a + ARG_PART_CHARS]]
    return out


def run_trace(state: TwinState, job: TraceJob, algo: str, scale: float, iterations: int = 3,
              warmup: int = 1, conns: int = 1, timeout: float = 60.0,
              workers: Optional[list[str]] = None) -> list[IterationResult]:
    """Replay a Chakra trace, trace i on rank i (every worker, or those named: as many as there
    are traces); per iteration the slowest rank counts. All-reduces run as ``algo``."""
    members = workers or [w.name for w in state.workers]
    if len(members) != len(job.ranks):
        raise TwinError(f"replay: {len(job.ranks)} trace file(s) for {len(members)} ranks "
                        f"({', '.join(members)}); give one trace per rank, or name as many "
                        f"workers with --workers")
    time_ = state.time
    graphs = [graph_of(job, r, scale, time_.host_s) for r in range(len(job.ranks))]
    for g in graphs:
        g.update(algo=algo, iterations=iterations, warmup=warmup)
    compute = job.compute_s
    outs, host = _run_ranks(state, "traffic.graph_replay", [], lambda i: graph_arguments(graphs[i]),
                            compute, warmup + iterations, conns, timeout, members)
    results = []
    for k in range(iterations):
        per = [o[k] for o in outs]
        took = time_.fabric_s(max(r["iteration_s"] for r in per))
        results.append(IterationResult(
            iteration=k, iteration_s=took, compute_s=compute,
            comm_s=time_.fabric_s(statistics.mean(r["comm_s"] for r in per)),
            exposed_s=took - compute, wrong=-1, host=host))
    return results


def _run_ranks(state: TwinState, module: str, argv: list[str], per_rank: Callable[[int], list[str]],
               compute_s: float, runs: int, conns: int, timeout: float,
               workers: Optional[list[str]]) -> tuple[list[list[dict]], LoadSummary]:
    """Every rank's JSON lines of a replay, and what the host-load witnesses saw; a rank
    that fails or outlasts the replay's budget is one line naming it."""
    time_ = state.time
    timeout = time_.host_s(timeout)
    budget = runs * (time_.host_s(compute_s) + 10 * timeout) + 60
    outs = []
    with HostLoad.of(state) as load, launch_ranks(state, module, argv + ["--conns", str(conns),
                                                                         "--timeout", str(timeout),
                                                                         "--sndbuf",
                                                                         json.dumps(send_windows(state))],
                                                  workers, per_rank) as ranks:
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
    # the generator's share: each rank's CPU over all its timed iterations (compute included,
    # which sleeps), the busiest rank counting; rank programs that do not report it leave it out
    host = load.summary.with_generator(
        [sum(r["cpu_s"] for r in o) / sum(r["iteration_s"] for r in o) for o in outs
         if o and all("cpu_s" in r for r in o) and sum(r["iteration_s"] for r in o) > 0])
    return outs, host


@dataclass
class TraceRow:
    """One measured iteration of a trace replay, as ``twin replay --csv`` writes it."""

    time: str
    git_commit: str
    topology: str
    traces: str  # the trace files, rank 0 first, separated by spaces
    ranks: int
    sites: int
    workers: str  # the workers, rank 0 first
    algo: str  # how the all-reduces ran
    collectives: int
    comm_bytes_real: int  # rank 0's collectives, comm_size summed
    comm_bytes_emulated: int
    iteration: int
    iteration_s: float
    compute_s: float  # the longest chain of compute of any rank
    comm_s: float  # the ranks' mean of their collectives' durations, summed
    exposed_s: float  # iteration - compute
    scale: str
    dilation: float
    mechanism: str
    host_cpu_saturated_share: float
    host_bound: bool  # any of measure.hostload's three witnesses says so
    line_late_share: Optional[float]
    line_late_p99_ms: Optional[float]
    generator_cpu_share: Optional[float]
    host: str  # the printed verdict


def trace_rows(results: list[IterationResult], job: TraceJob, state: TwinState, algo: str,
               scale: float, workers: Optional[list[str]], commit: str) -> list[TraceRow]:
    """The rows of one replay: its iterations, each with what made it (code, fabric, scale)."""
    members = [state.worker(n) for n in workers] if workers else list(state.workers)
    colls = job.collectives
    emulated = sum(n.emulated_bytes(scale) for n in colls)
    return [TraceRow(time=time.strftime("%Y-%m-%dT%H:%M:%S"), git_commit=commit,
                     topology=state.topology, traces=" ".join(job.sources), ranks=len(members),
                     sites=len({w.site for w in members}), workers=" ".join(w.name for w in members),
                     algo=algo, collectives=len(colls), comm_bytes_real=sum(n.size for n in colls),
                     comm_bytes_emulated=emulated, iteration=r.iteration,
                     iteration_s=round(r.iteration_s, 6), compute_s=round(r.compute_s, 6),
                     comm_s=round(r.comm_s, 6), exposed_s=round(r.exposed_s, 6), scale=state.scale,
                     dilation=state.dilation, mechanism=state.mechanism,
                     **host_columns(r.host)) for r in results]
