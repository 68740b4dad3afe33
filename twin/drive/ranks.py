"""Start one rank of a worker-side program (traffic/) in every member's container, with the
rendezvous the twin arranges, stop the ranks that outlive their run, and turn a failed rank into
one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Optional

from traffic.collectives import PIPELINE_BYTES
from twin.drive.workerexec import WorkerProcess, stop
from twin.emulation.state import TwinState, WorkerInfo


@dataclass
class Ranks:
    """Rank i is ``procs[i]``, running in ``members[i]``'s container. As a context manager it
    kills, on the way out, every rank still running, whether the run ended, failed or timed out:
    a rank left behind would go on loading the WAN under the next measurement."""

    members: list[WorkerInfo]
    procs: list[WorkerProcess]

    def __enter__(self) -> Ranks:
        return self

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        stop(self.procs)


def send_window(state: TwinState) -> int:
    """The bytes each of the twin's rank connections may hold unsent or in flight (``--sndbuf``):
    what the longest long-haul path holds (its round trip at the emulated rate, in host time,
    plus its queue), and never less than two pipeline pieces.

    Why bounded: with the kernel's autotuning a ring's flow kept up to 4 MB queued and overran
    the WAN port's queue; on ci-2site at 1/1000 that was 46-76 drops and 320-529 retransmitted
    segments per run, and 44-74% of the bottleneck at 64 MiB, against 0 drops and 57-76% with
    2 MiB (three interleaved runs). gloo, which keeps two segments in flight per hop, had
    0-10 drops. Sized from the path, not fixed, so a long link is never window-limited."""
    time_ = state.time
    held = [time_.host_bps(w.emulated_bps) * 2 * time_.host_s(w.delay_s) / 8 + w.queue_bytes
            for w in state.wan]
    return int(max([2 * PIPELINE_BYTES, *held]))


def launch_ranks(state: TwinState, module: str, argv_tail: list[str],
                 workers: Optional[list[str]] = None,
                 per_rank: Callable[[int], list[str]] = lambda i: []) -> Ranks:
    """Start one rank of a worker-side module in every member's container (all workers, or
    those named), with the rendezvous (rank list with addresses and sites) the twin arranges;
    rank i's arguments are ``argv_tail`` and then ``per_rank(i)``.

    One after the other, 12-20 ms each on the 40-city topology: the engine answers a start
    before it has spawned the command, so the ranks come up together. Until every rank of a
    4-byte all-reduce had printed its result: 6.2 s there (5.8-6.7 s; 8.5 s, 6.3-11.3 s, with a
    ``docker exec`` client per rank: 40 client processes competing with the ranks for 2 cores),
    0.40 s on ci-2site (0.72 s); medians of 9 and 5 runs under the machine lock."""
    members = [state.worker(n) for n in workers] if workers else list(state.workers)
    ranks = json.dumps([{"rank": i, "ip": w.ip, "site": w.site} for i, w in enumerate(members)])
    procs: list[WorkerProcess] = []
    try:
        for i, w in enumerate(members):
            procs.append(WorkerProcess(w.container, ["python3", "-m", module, "--rank", str(i),
                                                     "--ranks", ranks] + argv_tail + per_rank(i)))
    except BaseException:
        stop(procs)  # the ranks already started would wait for the missing one until timeout
        raise
    return Ranks(members, procs)


def rank_error(out: str, err: str, rank: int, name: str, rc: int) -> str:
    for line in out.splitlines():
        if line.startswith("{") and '"error"' in line:
            return f"{json.loads(line)['error']} (worker {name})"
    tail = (err.strip().splitlines() or [f"exit status {rc}"])[-1]
    return f"rank {rank} (worker {name}) exited with status {rc}: {tail}"
