"""An execution graph replayed by real ranks over loopback TCP: dependencies respected, compute
overlapping where the graph lets it, every collective type the twin replays, failures named."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from tests.threads import in_threads
from traffic import graph_replay
from traffic.bench import DTYPE
from traffic.comm import CollectiveError, Comm, RankInfo

_ports = itertools.count(24000, 10)  # below the ephemeral range, apart from test_collectives'


def replay(p: int, nodes: list[list], timeout: float = 20.0) -> dict[int, dict]:
    base = next(_ports)
    ranks = [RankInfo(r, "127.0.0.1", "s0", base + r) for r in range(p)]
    graph = {"nodes": nodes, "algo": "ring", "compute_s": 0.0}

    def rank(r):
        comm = Comm(r, ranks, timeout=timeout)
        try:
            buf = np.zeros(1 << 16, dtype=DTYPE)
            return graph_replay.run_iteration(comm, graph, buf, np.zeros_like(buf))
        finally:
            comm.close()
    return in_threads(rank, range(p), timeout=60)


def test_independent_compute_overlaps_and_a_chain_adds_up():
    t0 = time.perf_counter()
    replay(1, [["compute", 0.2, []], ["compute", 0.2, []], ["compute", 0.2, []]])
    assert time.perf_counter() - t0 < 0.35  # three at once, not 0.6 s one after the other
    t0 = time.perf_counter()
    replay(1, [["compute", 0.1, []], ["compute", 0.1, [0]], ["metadata", 0, [1]],
               ["compute", 0.1, [2]]])
    assert time.perf_counter() - t0 >= 0.3


def test_a_collective_starts_after_its_dependencies_on_every_rank():
    res = replay(2, [["compute", 0.15, []], ["allreduce", 4096, [0]], ["compute", 0.05, [1]]])
    for r in res.values():
        assert r["iteration_s"] >= 0.2
        assert r["comm_s"] < r["iteration_s"]


@pytest.mark.parametrize("op", ["allreduce", "allgather", "reducescatter", "broadcast", "alltoall",
                                "barrier"])
def test_every_collective_the_twin_replays_runs_on_three_ranks(op):
    res = replay(3, [["compute", 0.01, []], [op, 40_000, [0]], [op, 4, [1]]])
    assert all(r["comm_s"] > 0 and r["wrong"] == -1 for r in res.values())


def test_compute_beside_a_collective_runs_while_it_runs():
    """A compute node that does not wait on the collective is not held up by it."""
    res = replay(2, [["barrier", 0, []], ["compute", 0.2, []], ["allreduce", 4096, [0]]])
    assert all(r["iteration_s"] < 0.35 for r in res.values())


def test_a_peer_that_never_comes_ends_the_iteration_with_its_error():
    base = next(_ports)
    ranks = [RankInfo(r, "127.0.0.1", "s0", base + r) for r in range(2)]

    def rank(r):
        comm = Comm(r, ranks, timeout=2.0)
        try:
            if r == 1:
                return None  # connected, then gone: rank 0's collective finds nobody
            buf = np.zeros(1024, dtype=DTYPE)
            graph = {"nodes": [["compute", 0.01, []], ["allreduce", 4096, [0]],
                               ["compute", 5.0, []]], "algo": "ring", "compute_s": 5.0}
            with pytest.raises(CollectiveError):
                graph_replay.run_iteration(comm, graph, buf, buf)
            return "raised"
        finally:
            comm.close()
    t0 = time.perf_counter()
    assert in_threads(rank, range(2), timeout=60)[0] == "raised"
    assert time.perf_counter() - t0 < 4.5  # the failed collective ends the iteration early


def test_the_graph_comes_in_parts_and_each_iteration_prints_a_line(capsys):
    graph = '{"nodes": [["compute", 0.01, []]], "algo": "ring", "compute_s": 0.01, ' \
            '"iterations": 2, "warmup": 1}'
    base = next(_ports)
    ranks = f'[{{"rank": 0, "ip": "127.0.0.1", "site": "s0", "port": {base}}}]'
    rc = graph_replay.main(["--rank", "0", "--ranks", ranks, "--graph", graph[:20],
                            "--graph", graph[20:]])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(lines) == 2 and '"iteration": 1' in lines[1]
