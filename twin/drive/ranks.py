"""Start one rank of a worker-side program (traffic/) in every member's container, with the
rendezvous the twin arranges, and turn a failed rank into one line.
"""

from __future__ import annotations

import json
import subprocess
from typing import Optional

from twin.emulation.state import TwinState


def launch_ranks(state: TwinState, module: str, argv_tail: list[str],
                 workers: Optional[list[str]] = None) -> tuple[list, list[subprocess.Popen]]:
    """Start one rank of a worker-side module in every member's container, with the rendezvous
    (rank list with addresses and sites) the twin arranges. Returns (members, processes)."""
    members = [state.worker(n) for n in workers] if workers else list(state.workers)
    ranks = json.dumps([{"rank": i, "ip": w.ip, "site": w.site} for i, w in enumerate(members)])
    procs = [subprocess.Popen(["docker", "exec", w.container, "python3", "-m", module,
                               "--rank", str(i), "--ranks", ranks] + argv_tail,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, w in enumerate(members)]
    return members, procs


def rank_error(out: str, err: str, rank: int, name: str, rc: int) -> str:
    for line in out.splitlines():
        if line.startswith("{") and '"error"' in line:
            return f"{json.loads(line)['error']} (worker {name})"
    tail = (err.strip().splitlines() or [f"exit status {rc}"])[-1]
    return f"rank {rank} (worker {name}) exited with status {rc}: {tail}"

