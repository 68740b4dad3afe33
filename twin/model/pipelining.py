"""Back-to-back all-reduces without a barrier between them: a per-rank event recursion.

A training iteration all-reduces its gradient buckets one after another, and each rank starts
the next bucket as soon as *it* has finished the previous one. Ranks finish a collective at
different times (those one WAN crossing closer to the last chunk finish a propagation delay
earlier), so consecutive collectives overlap on the links: a rank that is done sends its first
chunk of bucket j+1 while the last chunks of bucket j are still crossing the WAN. Adding up
isolated collectives ignores that; on ci-2site (1/4000, 8 buckets of 62.5 KB chunks, the
reference campaign) the sum predicted ring iterations on the 25 Mbit/s WAN up to 5.9% too slow
at 1,000-3,000 km; this recursion is within 1.4% there. (On two sites the hierarchical
all-reduce's local phases keep its ranks in step: no measurable difference.)

The recursion follows what the twin's ranks do (traffic/collectives.py): ring steps of one chunk
each, pipelined in pieces (a piece goes on as soon as it has arrived), each rank's sends leaving
one after another through its NIC (a FIFO of the ring's next hop), a hop costing its
serialization plus latency (alpha_lan + its one-way propagation). Per rank it tracks when the
first and the last piece of its next send are there (``have``) and when its NIC is free
(``free``); a collective is a list of ring phases over groups of ranks.

Cost: one vector step per ring step, so a long sequence of identical buckets is cut short once
consecutive buckets shift every rank's state by the same amount (the recursion is max-plus
linear: the regime is then periodic and the rest is extrapolated exactly).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from traffic.collectives import PIPELINE_BYTES
from twin.model.fabric import Fabric, ring_hops


def _ring_phase(have: np.ndarray, free: np.ndarray, steps: int, x: np.ndarray | np.float64,
                lat: np.ndarray | np.float64, axis: int,
                xp: np.ndarray | np.float64 | None = None) -> np.ndarray:
    """``steps`` ring steps along ``axis`` of the rank grid; returns when each rank holds the last
    piece it received. ``x``/``lat``: each rank's hop to its ring successor (broadcastable), a
    whole chunk's transfer; ``xp`` its first piece's (default: the chunk is one piece). A rank
    starts forwarding once the first piece is there and its NIC is free, and cannot finish
    before the last piece has arrived and been sent on. ``free`` is updated in place; ``have``
    is only read."""
    xp = x if xp is None else xp
    n = have.shape[axis]
    prev = np.arange(-1, n - 1) % n  # each member receives from its predecessor
    take = (lambda v: v[prev]) if axis == 0 else (lambda v: v[:, prev])
    first = last = have
    for _ in range(steps):
        start = np.maximum(first, free)
        end = np.maximum(start + x, last + xp)
        free[...] = end
        first, last = take(start + xp + lat), take(end + lat)
    return last


def _piece(chunk: float) -> float:
    return min(chunk, PIPELINE_BYTES)


def _ring_op(f: Fabric, size: float, start: np.ndarray, free: np.ndarray) -> np.ndarray:
    p = f.ranks
    x, lat = ring_hops(f, size / p)
    xp, _ = ring_hops(f, _piece(size / p))
    return _ring_phase(start, free, 2 * (p - 1), np.asarray(x), np.asarray(lat), axis=0,
                       xp=np.asarray(xp))


def _site_hop_delays(f: Fabric) -> np.ndarray:
    """One-way propagation from each site to the next in site order (the inter-site ring)."""
    k, m = f.per_site, f.sites
    if len(f.ring_hop_delays) == f.ranks:  # the last rank of site a hops to site a+1
        return np.array([f.ring_hop_delays[(a + 1) * k - 1] for a in range(m)])
    return np.full(m, f.alpha_wan - f.alpha_lan)


def _hier_op(f: Fabric, size: float, start: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Reduce-scatter in each site, k inter-site rings on S/k shards, all-gather in each site.
    The rank grid is (site, local index); all three phases send through the same NIC."""
    k, m = f.per_site, f.sites
    grid_free = free.reshape(m, k)
    have = start.reshape(m, k)
    local_x, local_lat = size / k * 8 / f.lan_bps, f.alpha_lan
    local_xp = np.float64(_piece(size / k) * 8 / f.lan_bps)
    if k > 1:
        have = _ring_phase(have, grid_free, k - 1, np.float64(local_x), np.float64(local_lat), 1,
                           local_xp)
    if m > 1:
        share = min(f.wan_bps / k, f.lan_bps)  # k rings share each site's WAN link
        inter_x = size / k / m * 8 / share
        inter_lat = (f.alpha_lan + _site_hop_delays(f))[:, None]
        have = _ring_phase(have, grid_free, 2 * (m - 1), np.float64(inter_x), inter_lat, 0,
                           np.float64(_piece(size / k / m) * 8 / share))
    if k > 1:
        have = _ring_phase(have, grid_free, k - 1, np.float64(local_x), np.float64(local_lat), 1,
                           local_xp)
    return have.reshape(-1)


OPS = {"ring": _ring_op, "hier": _hier_op}


MAX_PERIOD = 8  # cyclicities seen: 1 (4 ranks in 2 sites) and 4 (8 ranks per site)


def sequence_finish(algo: str, f: Fabric, sizes: Sequence[float],
                    ready: Sequence[float]) -> float:
    """When the last of these all-reduces ends, bucket j starting no earlier than ``ready[j]``
    on every rank and each rank taking the buckets in order."""
    op = OPS[algo]
    p = f.ranks
    done = np.zeros(p)  # when each rank finished its previous bucket
    free = np.zeros(p)  # when each rank's NIC is free
    # states (done, free) after each bucket since the last one that had to wait for its gradient
    # or changed size: each state in it is a function of the previous one only
    run: list[tuple[np.ndarray, np.ndarray]] = []
    cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    j, n = 0, len(sizes)
    while j < n:
        size = sizes[j]
        waiting = ready[j] <= done.min()  # every rank is still busy: the gradient is not the limit
        if not (waiting and run and sizes[j - 1] == size):
            run = []
        period = _period(run) if waiting and len(run) > 1 else None
        if period:
            # periodic regime (max-plus linear recursion): the state c buckets ago plus a shift
            c, shift = period
            while j < n and sizes[j] == size and ready[j] <= done.min():
                done, free = run[-c][0] + shift, run[-c][1] + shift
                run.append((done, free))
                j += 1
            continue
        if ready[j] >= max(done.max(), free.max()):
            # every rank idle when the gradient arrives: the bucket runs as if alone
            rel_done, rel_free = _alone(op, f, size, cache)
            done, free = rel_done + ready[j], rel_free + ready[j]
        else:
            free = free.copy()
            done = op(f, size, np.maximum(done, ready[j]), free)
        run.append((done, free))
        j += 1
    return float(done.max()) if n else 0.0


def _alone(op, f: Fabric, size: float, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """(done, free) of one bucket started at time 0 on an idle fabric, once per size."""
    if size not in cache:
        free = np.zeros(f.ranks)
        cache[size] = (op(f, size, np.zeros(f.ranks), free), free)
    return cache[size]


def _period(run: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, float] | None:
    """(c, s) if the last state is the state c steps earlier shifted by s on every rank."""
    done, free = run[-1]
    for c in range(1, min(MAX_PERIOD, len(run) - 1) + 1):
        d, fr = done - run[-1 - c][0], free - run[-1 - c][1]
        s = float(d[0])
        tol = 1e-12 * max(1.0, float(done.max()))
        if s > 0 and np.all(np.abs(d - s) <= tol) and np.all(np.abs(fr - s) <= tol):
            return c, s
    return None
