"""The real DDP training job (traffic.ddp) across a live twin, and the replay schedule it implies.

The job runs with ``twin run``'s machinery (twin.drive.everywhere: torchrun's environment in
every worker of the torch image), each rank prints one JSON line, and this turns them into one
``DdpRun``: per timed iteration the slowest rank's time (iterations start after a barrier, so
the slowest rank is the iteration), the compute measured with DDP's sync off, DDP's buckets,
and whether every replica ended bit for bit equal. ``replay_schedule`` makes of a run the
schedule the twin's own replay (twin.drive.replay) and the analytic model take: the same
gradient buckets (the bytes DDP put on the emulated wire), the forward, backward and optimizer
times the job measured.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Optional

from twin.drive.everywhere import RankOutcome, run_everywhere
from twin.emulation.state import TwinState
from twin.errors import TwinError
from twin.measure.hostload import HostLoad
from twin.spec.schedule import Schedule

MODULE = "traffic.ddp"
DDP_PORT = 29500  # torchrun's default; the detpath reservation covers it


@dataclass(frozen=True)
class DdpConfig:
    """The job's size and length: traffic.ddp's options."""

    width: int = 1024
    depth: int = 4
    batch: int = 256
    bucket_cap_mb: float = 4.0
    iters: int = 5
    warmup: int = 2
    compute_iters: int = 3
    threads: int = 1

    def argv(self, timeout: float) -> list[str]:
        """The command every worker runs."""
        return ["python3", "-m", MODULE, "--width", str(self.width), "--depth", str(self.depth),
                "--batch", str(self.batch), "--bucket-cap-mb", f"{self.bucket_cap_mb:g}",
                "--iters", str(self.iters), "--warmup", str(self.warmup),
                "--compute-iters", str(self.compute_iters), "--threads", str(self.threads),
                "--timeout", f"{timeout:g}"]

    @property
    def params(self) -> int:
        return self.depth * (self.width + 1) * self.width


@dataclass(frozen=True)
class DdpRun:
    """What the ranks measured, combined (seconds; emulated bytes)."""

    ranks: int
    params: int
    gradient_bytes: int
    buckets: tuple[int, ...]  # DDP's, in the order it reduces them
    iteration_s: tuple[float, ...]  # per timed iteration, the slowest rank
    forward_s: float  # medians over iterations of the slowest rank: compute-only iterations
    backward_s: float
    optimizer_s: float  # from the training iterations (stepping needs no communication)
    in_sync: bool  # every rank's final parameters hash the same
    loss_first: float
    loss_last: float
    host_cpu_saturated_share: float = 0.0
    host_bound: bool = False

    @property
    def median_iteration_s(self) -> float:
        return statistics.median(self.iteration_s)

    @property
    def compute_s(self) -> float:
        return self.forward_s + self.backward_s + self.optimizer_s


def rank_result(out: str) -> dict:
    """The one JSON result line a rank printed (its last JSON line); TwinError if it printed
    an error line or none."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise TwinError("printed no result line")
    last = lines[-1]
    if "error" in last:
        raise TwinError(str(last["error"]))
    return last


def _slowest(results: list[dict], key: str) -> list[float]:
    """Per iteration, the largest of the ranks' times under ``key``."""
    return [max(vals) for vals in zip(*(r[key] for r in results))]


def combine(results: list[dict], saturated_share: float = 0.0, host_bound: bool = False) -> DdpRun:
    """One run out of every rank's result line (rank order)."""
    if not results:
        raise TwinError("ddp: no rank results")
    first = results[0]
    if any(r["buckets"] != first["buckets"] or r["params"] != first["params"] for r in results):
        raise TwinError("ddp: the ranks disagree on the model or its buckets")
    compute_fwd = _slowest(results, "compute_forward_s")
    compute_bwd = _slowest(results, "compute_backward_s")
    if not compute_fwd or not compute_bwd:
        raise TwinError("ddp: no compute-only iterations to time the compute (--compute-iters 0)")
    return DdpRun(
        ranks=len(results), params=int(first["params"]), gradient_bytes=int(first["gradient_bytes"]),
        buckets=tuple(int(b) for b in first["buckets"]),
        iteration_s=tuple(_slowest(results, "iteration_s")),
        forward_s=statistics.median(compute_fwd), backward_s=statistics.median(compute_bwd),
        optimizer_s=statistics.median(_slowest(results, "optimizer_s")),
        in_sync=len({r["param_sha256"] for r in results}) == 1,
        loss_first=statistics.mean(r["loss_first"] for r in results),
        loss_last=statistics.mean(r["loss_last"] for r in results),
        host_cpu_saturated_share=round(saturated_share, 3), host_bound=host_bound)


def outcome_errors(outcomes: list[RankOutcome]) -> Optional[str]:
    """One line naming the failed ranks (their error line, or their last line), or None."""
    failed = [o for o in outcomes if o.failed]
    if not failed:
        return None
    whys = []
    for o in failed[:3]:
        errors = [json.loads(line)["error"] for line in o.stdout.splitlines()
                  if line.startswith("{") and '"error"' in line]
        why = (errors[0] if errors else o.why_killed
               or (o.last_lines(1) or [f"exit status {o.returncode}"])[0])
        whys.append(f"rank {o.rank} ({o.worker}): {why}")
    return "; ".join(whys)


def run_ddp(state: TwinState, config: DdpConfig, timeout: float = 600.0) -> DdpRun:
    """The job on every worker of the running twin (which must run the torch image), with the
    host's load sampled while its timed iterations ran. Real time only: under time dilation the
    ranks' compute would not stretch with the fabric."""
    if state.time.k != 1:
        raise TwinError(f"ddp runs in real time: bring the twin up without dilation (K = {state.time.k:g})")
    with HostLoad() as load:
        outcomes = run_everywhere(state, config.argv(timeout=min(timeout, 300.0)), port=DDP_PORT,
                                  timeout=timeout)
    if (why := outcome_errors(outcomes)) is not None:
        raise TwinError(f"ddp failed: {why}")
    results = [rank_result(o.stdout) for o in outcomes]
    start, end = timed_window(results)
    busy = load.summary_between(start, end)
    return combine(results, busy.saturated_share, busy.host_bound)


def timed_window(results: list[dict]) -> tuple[float, float]:
    """From the first rank's start of the timed iterations to the last rank's end (wall clock)."""
    return (min(r["timed_start_unix"] for r in results), max(r["timed_end_unix"] for r in results))


def replay_schedule(run: DdpRun) -> Schedule:
    """The schedule of the run for the twin's replay and the model, already at the emulated
    scale (DDP's bucket bytes are what crossed the emulated links): its buckets in DDP's order,
    produced at an even rate over the backward pass (the MLP's layers are equal), the compute
    the run measured."""
    return Schedule(forward=run.forward_s, backward=run.backward_s, optimizer=run.optimizer_s,
                    buckets=list(run.buckets), overlap=True)
