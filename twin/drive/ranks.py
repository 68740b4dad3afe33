"""Start one rank of a worker-side program (traffic/) in every member's container, with the
rendezvous the twin arranges, stop the ranks that outlive their run, and turn a failed rank into
one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Optional

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


# The round trip a same-site hop's window must cover (host time): not the idle floor (0.3-0.9 ms
# here) but what a loaded 2-core machine shows, where the receiving rank's acknowledgements wait
# for a CPU. On ci-2site at 1/1000 (64 MiB ring, 4 interleaved runs each) a window for 1 ms held
# the ring to 254-299 Mbit/s, one for 10 ms 288-327, with no more drops.
LAN_RTT_S = 10e-3


def send_windows(state: TwinState) -> dict[str, int]:
    """The bytes a rank connection may hold unsent or in flight (``--sndbuf``), per pair of sites
    ("A>B", both directions; "A>A" inside a site): what its path holds, the round trip at the
    path's bottleneck rate (host time) plus the bottleneck's queue, and for a cross-site path
    what the queues on its acknowledgements' way back hold at that rate.

    Why bounded, and per path: with the kernel's autotuning a ring's flow kept up to 4 MB queued
    and overran the WAN port's queue (ci-2site at 1/1000: 46-76 drops and 320-529 retransmitted
    segments per run); one 2 MiB window for every connection then overran the 64 frames a
    worker link queues inside a site (the ring's same-site hops: 90-130 drops per 64 MiB run,
    against 0-24 with a window per path, four interleaved runs each) and would overrun the
    queue of any path slower than the longest. gloo, which keeps two segments in flight per
    hop, had 0-16.

    A cross-site connection's window also covers its acknowledgements' way back: in a ring every
    hop's reverse direction carries another hop's data, and an acknowledgement queued behind it
    (a worker link's 64 frames at 400 Mbit/s hold 11.5 ms) stretches the round trip the window
    must fill. Without it the ring's WAN hops were send-buffer limited for 22-27% of their busy
    time at round trips of 23-53 ms for a 13.4 ms path (``ss -ti`` in the workers); ci-2site at
    1/1000, 16 and 64 MiB rings, interleaved: the window of the path alone 311 Mbit/s, twice it
    371-381, with the way back's queues 374-389 (97% of the 400 Mbit/s bottleneck), three times
    it 370-380 with 22-52 retransmitted segments per run; none retransmitted in the others.
    Inside a site the measured LAN_RTT_S does better than the same rule (353-377 Mbit/s and up
    to 47 retransmitted segments with the way back added)."""
    import networkx as nx

    from twin.emulation.tc import default_queue_bytes
    from twin.plan.graph import fabric_graph
    time_ = state.time
    g = fabric_graph(({"a": w.a, "b": w.b, "delay_s": w.delay_s, "emulated_bps": w.emulated_bps}
                      for w in state.wan), state.site_bps)
    queue = {frozenset((w.a, w.b)): w.queue_bytes for w in state.wan}
    lan_queue = default_queue_bytes(state.mtu)
    out: dict[str, int] = {}
    for a in state.site_bps:
        lan_rtt = 4 * time_.host_s(state.site_delay_s.get(a, 0.0)) + LAN_RTT_S
        out[f"{a}>{a}"] = int(time_.host_bps(state.site_bps[a]) * lan_rtt / 8 + lan_queue)
        for b in state.site_bps:
            if a == b or not nx.has_path(g, a, b):
                continue
            path = nx.dijkstra_path(g, a, b, weight="delay")
            links = list(zip(path, path[1:]))
            rate, held = min((g[u][v]["capacity"], queue[frozenset((u, v))]) for u, v in links)
            edge = [(state.site_bps[a], lan_queue), (state.site_bps[b], lan_queue)]
            if min(edge)[0] < rate:  # a worker link is the bottleneck: its queue fills
                rate, held = min(edge)
            one_way = sum(g[u][v]["delay"] for u, v in links) + state.site_delay_s.get(a, 0.0) \
                + state.site_delay_s.get(b, 0.0)
            # the acknowledgements' way back: b's worker link, the WAN links b -> a, a's worker
            # link; each queue there can be full of the reverse direction's data, and the time
            # an acknowledgement waits behind it is window the sender must have in flight
            back = [(state.site_bps[b], lan_queue)] \
                + [(g[u][v]["capacity"], queue[frozenset((u, v))]) for u, v in reversed(links)] \
                + [(state.site_bps[a], lan_queue)]
            acks = sum(q * rate / r for r, q in back)
            out[f"{a}>{b}"] = int(time_.host_bps(rate) * 2 * time_.host_s(one_way) / 8 + held + acks)
    return out


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
