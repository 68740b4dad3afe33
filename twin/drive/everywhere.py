"""One command in every worker at once, with the rendezvous environment torchrun gives its
processes, so an unchanged ``torch.distributed`` program (``init_process_group("gloo")`` with the
default ``env://``) runs across the twin as it would across a cluster.

Each worker is one node with one process (a GPU stand-in): RANK and NODE_RANK are its place in
the worker list, LOCAL_RANK 0 of LOCAL_WORLD_SIZE 1; MASTER_ADDR is rank 0's fabric address.
GLOO_SOCKET_IFNAME names the worker's fabric interface: without it gloo binds to the interface
the host name resolves to, which need not be the fabric's.

As torchrun does, once one rank has failed the others get ``grace`` seconds to end on their own
(a peer's failure usually fails them too, with their own message) and are then killed: left
alone they would wait in a collective until its timeout, loading the WAN under whatever runs
next. Only each command's own process is killed (see twin.drive.workerexec).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Optional

from twin.drive.workerexec import WorkerProcess, stop
from twin.emulation.state import TwinState, WorkerInfo
from twin.errors import TwinError

MASTER_PORT = 29500  # torchrun's default
POLL_S = 0.05


@dataclass
class RankOutcome:
    """What one rank did: its exit status (None: killed by the twin), and all it printed."""

    rank: int
    worker: str
    returncode: Optional[int]
    stdout: str
    stderr: str
    why_killed: str = ""  # set when the twin killed it: after another rank failed, or timed out

    @property
    def failed(self) -> bool:
        return self.returncode != 0

    def last_lines(self, n: int) -> list[str]:
        """Its last ``n`` lines of output, stderr's after stdout's (a traceback ends stderr)."""
        return (self.stdout.splitlines() + self.stderr.splitlines())[-n:]


def rendezvous_env(members: list[WorkerInfo], port: int = MASTER_PORT) -> list[dict[str, str]]:
    """The environment of each rank, as torchrun sets it for one process per node."""
    n = len(members)
    return [{"MASTER_ADDR": members[0].ip, "MASTER_PORT": str(port), "RANK": str(i),
             "WORLD_SIZE": str(n), "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "NODE_RANK": str(i),
             "GLOO_SOCKET_IFNAME": w.fabric_intf} for i, w in enumerate(members)]


def run_everywhere(state: TwinState, argv: list[str], port: int = MASTER_PORT,
                   timeout: float = 600.0, grace: float = 10.0,
                   workers: Optional[list[str]] = None) -> list[RankOutcome]:
    """``argv`` in every member's container (all workers, or those named) at once, rank i in
    member i; returns when every rank has ended (or was killed: after another rank's failure
    and ``grace`` seconds, or at ``timeout``)."""
    if not argv:
        raise TwinError("give the command to run in every worker")
    members = [state.worker(n) for n in workers] if workers else list(state.workers)
    procs: list[WorkerProcess] = []
    try:
        for w, env in zip(members, rendezvous_env(members, port)):
            procs.append(WorkerProcess(w.container, argv, env=env))
        outputs: list[tuple[str, str]] = [("", "")] * len(procs)

        def collect(i: int) -> None:  # read as the rank writes: a full pipe would stall it
            outputs[i] = procs[i].communicate()

        readers = [threading.Thread(target=collect, args=(i,), daemon=True) for i in range(len(procs))]
        for t in readers:
            t.start()
        why = [""] * len(procs)
        end, kill_at = time.monotonic() + timeout, float("inf")
        while any(p.poll() is None for p in procs):
            now = time.monotonic()
            first = next((i for i, p in enumerate(procs) if p.returncode not in (None, 0)), None)
            if first is not None and kill_at == float("inf"):
                kill_at = now + grace
            if now >= min(end, kill_at):
                reason = (f"killed {grace:g} s after rank {first} failed" if first is not None
                          else f"killed at the {timeout:g} s timeout")
                for i, p in enumerate(procs):
                    if p.poll() is None:
                        why[i] = reason
                stop(procs)
                break
            time.sleep(POLL_S)
        for t in readers:
            t.join(10.0)
    finally:
        stop(procs)
    return [RankOutcome(i, w.name, None if why[i] else p.returncode, *outputs[i], why_killed=why[i])
            for i, (w, p) in enumerate(zip(members, procs))]
