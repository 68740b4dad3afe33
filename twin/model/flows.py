"""Rank programs over the real paths: a fluid, event-driven replay of a collective's messages.

Where the schedule decides who talks to whom and when, as the pipelined binary tree's does, a
closed form over tree levels gets the link sharing wrong on a meshed fabric: a leaf at depth 4
sends at the same time as a leaf at depth 5 (both at once when the bucket is ready), an inner
rank only once both its children's pieces are in, and a parent's two edges come in over paths
that cross other edges' links. On the 40-city fabric (1/4000, 268 KB buckets, one piece each)
20 leaves send at once and up to 7 tree edges cross one 25 Mbit/s link; the level-by-level
closed form predicted the tree 14.8% faster than measured.

So the model replays the ranks' own programs (what traffic/collectives.py executes), message by
message:

- a rank's program is a generator yielding ``("send", dst, nbytes)`` (handed to the kernel: it
  returns at once while the connection holds less than ``window`` bytes, as a socket with a
  bounded send buffer does), ``("recv", src)`` (blocks until src's next message has arrived) and
  ``("at", t)`` (waits until t: a gradient bucket that is not produced yet);
- every connection is a FIFO: its messages are sent one after another;
- the messages on the wire at any moment share every resource they cross (the sender's NIC, each
  WAN link per direction, the receiver's NIC) max-min fairly in proportion to 1 / their round
  trip, as TCP flows on a shared bottleneck do: CUBIC's window grows with the time since its
  last loss, not with its round trip, and a bounded send window is one window for every flow,
  so flows of equal windows move a window per round trip each; the rates are recomputed
  whenever a message starts or ends;
- a message arrives ``latency`` after its last byte has passed its bottleneck: the software step
  (alpha_lan), the path's propagation, and the store-and-forward of its last frame on every WAN
  hop but the bottleneck (each delay line serializes a whole frame at its link's rate, as a
  router's port does; twin/emulation/delayline.c), which a multi-hop path pays once per hop.

Where it stands (fntf-40city, 1/4000, dilation 8, two 268 KB buckets; measured 5.695 s and
5.759 s a tree iteration in two campaign runs): with shares in proportion to 1 / round trip
this replay predicts 5.763 s; with equal shares it predicted 6.274 s (the tree's short edges
and long edges crossing one link then finish together, where TCP lets the short ones through
first), the level-by-level form 4.961 s. A frame-level replay with FIFO hops and slow-starting
senders (tried, not kept) said 5.01 s, strict FIFO by message 4.58 s. The ring keeps its closed
form.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Generator, Hashable, Sequence
from typing import Any, Optional

from traffic.collectives import PIPELINE_BYTES
from twin.model.fabric import Fabric

Op = tuple[Any, ...]
Program = Generator[Op, None, None]
Resource = Hashable


def max_min_rates(flows: Sequence[Sequence[Resource]], capacity: dict[Resource, float],
                  weights: Optional[Sequence[float]] = None) -> list[float]:
    """Weighted max-min fair rates (progressive filling) of flows crossing the given resources:
    the tightest resource is shared among its flows in proportion to their weights (equally
    without weights), they are then fixed, and so on."""
    w = list(weights) if weights is not None else [1.0] * len(flows)
    rate = [math.inf] * len(flows)
    left = {}
    users: dict[Resource, set[int]] = {}
    for i, res in enumerate(flows):
        for r in res:
            users.setdefault(r, set()).add(i)
            left[r] = capacity[r]

    def per_weight(r: Resource) -> float:
        return left[r] / sum(w[i] for i in users[r])
    while users:
        r = min(users, key=per_weight)
        share = per_weight(r)
        for i in list(users[r]):
            rate[i] = share * w[i]
            for q in flows[i]:
                left[q] -= rate[i]
                if q != r:
                    users[q].discard(i)
                    if not users[q]:
                        del users[q]
        del users[r]
    return rate


class Network:
    """The resources a message between two ranks crosses, their rates, and its latency."""

    def __init__(self, f: Fabric):
        self.f = f
        self.site = [r // f.per_site for r in range(f.ranks)]
        self.capacity: dict[Resource, float] = {}
        for r in range(f.ranks):
            self.capacity[("out", r)] = self.capacity[("in", r)] = f.lan_bps
        if f.paths is not None:
            self.capacity.update(f.paths.bps)
        self._routes: dict[tuple[int, int], tuple[tuple[Resource, ...], tuple[float, ...], float]] = {}

    def route(self, a: int, b: int) -> tuple[tuple[Resource, ...], tuple[float, ...], float]:
        """(resources, the WAN hops' rates, propagation) of a message from rank a to rank b."""
        key = (a, b)
        if key not in self._routes:
            sa, sb = self.site[a], self.site[b]
            arcs: tuple[Any, ...] = ()
            prop = 0.0
            if sa != sb:
                paths = self.f.paths
                if paths is not None:
                    arcs, prop = tuple(paths.arcs[(sa, sb)]), paths.delay[(sa, sb)]
                else:  # two-tier: one WAN hop of the fabric's rate
                    arcs, prop = (("wan", sa, sb),), self.f.alpha_wan - self.f.alpha_lan
                    self.capacity.setdefault(arcs[0], self.f.wan_bps)
            rates = tuple(self.capacity[x] for x in arcs)
            self._routes[key] = ((("out", a), *arcs, ("in", b)), rates, prop)
        return self._routes[key]

    def rtt(self, a: int, b: int) -> float:
        """The round trip of a connection from rank a to rank b on an idle fabric: the software
        step and the propagation, both ways."""
        return 2 * (self.f.alpha_lan + self.route(a, b)[2])

    def latency(self, a: int, b: int, nbytes: float) -> float:
        """From the last byte through the bottleneck to the message being there."""
        _, rates, prop = self.route(a, b)
        frame = self.f.paths.frame_bytes if self.f.paths is not None else 0.0
        last = min(nbytes, frame) * 8
        serial = [last / r for r in rates]
        if serial and min(rates) <= self.f.lan_bps:
            serial.remove(max(serial))  # the bottleneck hop's frame is in the fluid transfer
        return self.f.alpha_lan + prop + sum(serial)


def run(programs: Sequence[Program], net: Network, window: float = 2 * PIPELINE_BYTES) -> list[float]:
    """Run every rank's program to its end over the network; returns when each rank ended."""
    p = len(programs)
    now = 0.0
    end = [math.nan] * p
    queues: dict[tuple[int, int], deque[float]] = {}  # messages handed to a connection, unsent
    active: dict[tuple[int, int], list[float]] = {}  # connection -> [bytes left, size]
    held: dict[tuple[int, int], float] = {}  # bytes handed and not yet through
    arrived: dict[tuple[int, int], int] = {}  # messages there and not yet received
    blocked: dict[int, Op] = {}  # rank -> the op it waits on
    events: list[tuple[float, int, str, Any]] = []
    seq = 0
    rates: dict[tuple[int, int], float] = {}
    dirty = True

    def push(t: float, kind: str, data: Any) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, data))
        seq += 1

    def start_next(conn: tuple[int, int]) -> None:
        nonlocal dirty
        q = queues.get(conn)
        if conn not in active and q:
            n = q.popleft()
            active[conn] = [n, n]
            dirty = True

    def step(r: int) -> None:
        """Advance rank r's program until it blocks or ends."""
        prog = programs[r]
        op = blocked.pop(r, None)
        while True:
            if op is None:
                try:
                    op = next(prog)
                except StopIteration:
                    end[r] = now
                    return
            kind = op[0]
            if kind == "send":
                conn, n = (r, op[1]), float(op[2])
                if held.get(conn, 0.0) > 0 and held[conn] + n > window:
                    blocked[r] = op
                    return
                held[conn] = held.get(conn, 0.0) + n
                queues.setdefault(conn, deque()).append(n)
                start_next(conn)
            elif kind == "recv":
                conn = (op[1], r)
                if not arrived.get(conn):
                    blocked[r] = op
                    return
                arrived[conn] -= 1
            elif kind == "at":
                if op[1] > now:
                    blocked[r] = op
                    push(op[1], "timer", r)
                    return
            else:
                raise ValueError(f"unknown op {op!r}")
            op = None

    for r in range(p):
        step(r)
    while active or events:
        if dirty:
            conns = list(active)
            got = max_min_rates([net.route(*c)[0] for c in conns], net.capacity,
                                [1.0 / net.rtt(*c) for c in conns])
            rates = dict(zip(conns, got))
            dirty = False
        t_done = min((now + active[c][0] * 8 / rates[c] for c in active if rates[c] > 0),
                     default=math.inf)
        t = min(t_done, events[0][0] if events else math.inf)
        dt = t - now
        now = t
        finished = []
        for c, left in active.items():
            left[0] -= rates[c] * dt / 8
            if left[0] <= 1e-9 * left[1]:
                finished.append(c)
        wake: set[int] = set()
        for c in finished:
            size = active.pop(c)[1]
            dirty = True
            held[c] -= size
            push(now + net.latency(c[0], c[1], size), "arrive", c)
            start_next(c)
            op = blocked.get(c[0])
            if op is not None and op[0] == "send" and op[1] == c[1]:
                wake.add(c[0])
        while events and events[0][0] <= now:
            _, _, kind, data = heapq.heappop(events)
            if kind == "arrive":
                arrived[data] = arrived.get(data, 0) + 1
                op = blocked.get(data[1])
                if op is not None and op[0] == "recv" and op[1] == data[0]:
                    wake.add(data[1])
            else:
                wake.add(data)
        for r in sorted(wake):
            step(r)
    stuck = [r for r in range(p) if math.isnan(end[r])]
    if stuck:
        raise RuntimeError(f"rank programs deadlocked: ranks {stuck} wait on {[blocked.get(r) for r in stuck]}")
    return end


def _pieces(size: float, piece: float) -> list[float]:
    n = max(1, math.ceil(size / piece))
    return [piece] * (n - 1) + [size - piece * (n - 1)]


def tree_program(r: int, p: int, sizes: Sequence[float], ready: Sequence[float],
                 piece: float = PIPELINE_BYTES) -> Program:
    """Rank r of allreduce_tree (traffic/collectives.py), bucket after bucket: for each piece,
    receive it from both children (in order), add, send it to the parent; then for each piece,
    receive it from the parent and send it to both children. The next bucket starts once this
    rank is done with the previous one and its gradient is there."""
    children = [c for c in (2 * r + 1, 2 * r + 2) if c < p]
    parent = (r - 1) // 2 if r else None
    for size, t in zip(sizes, ready):
        yield ("at", t)
        pieces = _pieces(size, piece)
        for n in pieces:
            for c in children:
                yield ("recv", c)
            if parent is not None:
                yield ("send", parent, n)
        for n in pieces:
            if parent is not None:
                yield ("recv", parent)
            for c in children:
                yield ("send", c, n)


def tree_sequence(f: Fabric, sizes: Sequence[float], ready: Sequence[float],
                  piece: float = PIPELINE_BYTES) -> float:
    """When the last rank is done with the last of these tree all-reduces, bucket j starting no
    earlier than ``ready[j]`` (the ``sequence`` of twin.model.iteration.iteration_time)."""
    p = f.ranks
    if p == 1 or not sizes:
        return max(ready, default=0.0)
    net = Network(f)
    return max(run([tree_program(r, p, sizes, ready, piece) for r in range(p)], net))


def tree_alone(f: Fabric, size: float, piece: float = PIPELINE_BYTES) -> float:
    """One tree all-reduce on an idle fabric."""
    return tree_sequence(f, [size], [0.0], piece)



