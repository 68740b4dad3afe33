"""Replay an execution graph on one rank: compute stood in by timed waits, collectives over real
TCP, each node started once every node it depends on has ended (a Chakra trace, as the twin
hands it over: twin.drive.replay).

Graph (JSON, split over one or more ``--graph`` arguments, each within Linux's 128 KiB per
argument): {"nodes": [[kind, value, [deps...]], ...], "algo": "ring|hd|tree|hier",
"iterations": n, "warmup": n, "compute_s": s}. Nodes come in dependency order, and a node's
deps are indices of earlier nodes. ``kind`` is "compute" (value: seconds to wait), "metadata"
(no work) or a collective: one of traffic.collectives.OPS or "barrier" (value: bytes).

Compute nodes run concurrently whenever the graph lets them (they are timers, kept by one
thread); collectives run one at a time on a communication thread, in the order of the list, as
on one communicator: every rank has the same collectives in the same order, so their bytes
never interleave on the sockets between two ranks.

Prints one JSON line per measured iteration: iteration_s, compute_s (the graph's longest chain
of compute, given), comm_s (sum of collective durations), exposed_s (iteration - compute),
wrong (-1: bytes are moved, not checked).
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import sys
import threading
import time

import numpy as np

from traffic.bench import DTYPE, run_op
from traffic.comm import Comm, add_rank_arguments, concurrently, print_iterations, run_rank

NO_WORK = ("compute", "metadata")


class _Graph:
    """One iteration's progress through the graph, shared by the timer and the comm thread."""

    def __init__(self, nodes: list[list]):
        self.nodes = nodes
        self.waiting = [len(n[2]) for n in nodes]
        self.dependents: list[list[int]] = [[] for _ in nodes]
        for i, n in enumerate(nodes):
            for d in n[2]:
                self.dependents[d].append(i)
        self.cond = threading.Condition()
        self.timers: list[tuple[float, int]] = []
        self.ended = 0
        self.failed = False

    def start_free(self, free: list[int]) -> None:
        """Start the nodes that no longer wait on anything (under the lock): compute becomes a
        timer, metadata ends at once (and may free others), a collective is the comm thread's."""
        while free:
            i = free.pop()
            kind, value = self.nodes[i][0], self.nodes[i][1]
            if kind == "compute":
                heapq.heappush(self.timers, (time.perf_counter() + value, i))
            elif kind == "metadata":
                free += self.end(i)
        self.cond.notify_all()

    def fail(self) -> None:
        """Stop the other thread: the iteration cannot end (its error is raised by the caller)."""
        with self.cond:
            self.failed = True
            self.cond.notify_all()

    def may_go(self, i: int) -> bool:
        """Whether node i waits on nothing any more, or the iteration has failed."""
        return not self.waiting[i] or self.failed

    def end(self, i: int) -> list[int]:
        """Mark node i ended; the nodes that it frees (under the lock)."""
        self.ended += 1
        freed = []
        for j in self.dependents[i]:
            self.waiting[j] -= 1
            if not self.waiting[j]:
                freed.append(j)
        return freed


def run_iteration(comm: Comm, graph: dict, buf: np.ndarray, out: np.ndarray) -> dict:
    nodes, algo = graph["nodes"], graph["algo"]
    g = _Graph(nodes)
    collectives = [i for i, n in enumerate(nodes) if n[0] not in NO_WORK]
    durations: list[float] = []
    comm.barrier()
    t0, c0 = time.perf_counter(), time.process_time()

    def communicate() -> None:
        try:
            for i in collectives:
                with g.cond:
                    g.cond.wait_for(functools.partial(g.may_go, i))
                    if g.failed:
                        return
                op, size = nodes[i][0], nodes[i][1]
                s = time.perf_counter()
                if op == "barrier":
                    comm.barrier()
                else:
                    count = max(1, size // buf.itemsize)
                    run_op(comm, op, algo, buf[:count], out[:count], False)
                durations.append(time.perf_counter() - s)
                with g.cond:
                    g.start_free(g.end(i))
        except BaseException:
            g.fail()
            raise

    def keep_time() -> None:
        """The compute timers: end each when due, until every node has ended."""
        try:
            with g.cond:
                g.start_free([i for i, k in enumerate(g.waiting) if not k])
                while g.ended < len(nodes) and not g.failed:
                    now = time.perf_counter()
                    while g.timers and g.timers[0][0] <= now:
                        g.start_free(g.end(heapq.heappop(g.timers)[1]))
                    if g.ended < len(nodes):
                        g.cond.wait(g.timers[0][0] - now if g.timers else None)
        except BaseException:
            g.fail()
            raise

    concurrently(keep_time, communicate)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"iteration_s": elapsed, "compute_s": graph["compute_s"], "comm_s": sum(durations),
            "exposed_s": elapsed - graph["compute_s"], "wrong": -1, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="traffic.graph_replay")
    add_rank_arguments(ap, port=29600, timeout=60.0)
    ap.add_argument("--graph", action="append", required=True,
                    help="the JSON graph (see module doc), in one or more parts")
    a = ap.parse_args(argv)
    graph = json.loads("".join(a.graph))

    def body(comm: Comm) -> None:
        largest = max([n[1] for n in graph["nodes"] if n[0] not in NO_WORK + ("barrier",)], default=4)
        count = max(1, int(largest) // np.dtype(DTYPE).itemsize)
        buf = np.zeros(count, dtype=DTYPE)
        out = np.zeros(count if any(n[0] == "alltoall" for n in graph["nodes"]) else 1, dtype=DTYPE)
        print_iterations(graph, lambda: run_iteration(comm, graph, buf, out))
    return run_rank(a, body)


if __name__ == "__main__":
    sys.exit(main())
