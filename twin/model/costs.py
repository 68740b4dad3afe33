"""Alpha-beta costs of every all-reduce the twin replays, on a two-tier fabric (site LAN / WAN).
"""

from __future__ import annotations

import itertools
import math

from traffic.collectives import ALLREDUCE_ALGOS, PIPELINE_BYTES
from twin.model.fabric import Fabric, ring_hops


def _step(alpha: float, nbytes: float, bps: float) -> float:
    return alpha + nbytes * 8 / bps


def ring_time(f: Fabric, size: float, piece: float = PIPELINE_BYTES) -> float:
    """2(p-1) steps of S/p, pipelined in pieces, without a global lock-step.

    A rank forwards each piece (``piece`` bytes, the generator's PIPELINE_BYTES) of a chunk as
    soon as it has arrived and been added, so a piece's 2(p-1) hops form a chain: the time is
    the longest chain of hops (each its own latency + one piece's transfer) plus the rest of a
    chunk behind its first piece, or the busiest link's serial work (2(p-1) chunks back to back)
    plus one latency, whichever is longer. In a site-ordered ring with k ranks per site every
    k-th hop crosses the WAN, so a chain crosses it ceil(2(p-1)/k) times, not 2(p-1) times. A
    chunk no larger than a piece makes this the chain of whole chunks; with one rank per site
    (k = 1) or one site, and such chunks, the textbook 2(p-1)(alpha + S/(pB)).
    """
    p = f.ranks
    if p == 1:
        return 0.0
    hops = 2 * (p - 1)
    chunk = size / p
    first = min(chunk, piece)
    if f.sites == 1:
        per_hop = _step(f.alpha_lan, first, f.lan_bps)
        tail = (chunk - first) * 8 / f.lan_bps
        return max(hops * per_hop + tail, hops * chunk * 8 / f.lan_bps + f.alpha_lan)
    # hop e costs its latency + one piece's transfer; the longest chain of `hops` consecutive
    # hops around the ring plus the chunk's remaining pieces on its slowest hop, or the busiest
    # hop's serial work plus one latency
    x, lat = ring_hops(f, chunk)
    xp, _ = ring_hops(f, first)
    cost = [le + xe for le, xe in zip(lat, xp)]
    laps, rest = divmod(hops, p)
    around = list(itertools.accumulate(cost + cost, initial=0.0))  # window sums in O(p)
    chain = laps * around[p] + max(around[j + rest] - around[j] for j in range(p))
    chain += max(xe - xpe for xe, xpe in zip(x, xp))
    busiest = hops * max(x) + max(lat)
    return max(chain, busiest)


def hd_time(f: Fabric, size: float) -> float:
    """Rabenseifner: log2(p) halving steps then log2(p) doubling steps.

    A step at partner distance d >= k crosses the WAN; all k ranks of a site then exchange with
    one other site at once and share its WAN capacity. Non-power-of-two p adds a fold-in and a
    fold-out of the whole buffer.
    """
    p = f.ranks
    if p == 1:
        return 0.0
    pof2 = 1 << (p.bit_length() - 1)
    total = 0.0
    if pof2 != p:  # fold extra ranks in and out (neighbours in rank order: LAN unless k == 1)
        alpha, bps = (f.alpha_lan, f.lan_bps) if f.per_site > 1 else (f.alpha_wan, min(f.wan_bps, f.lan_bps))
        total += 2 * _step(alpha, size, bps)
    d, data = pof2 // 2, size / 2
    while d >= 1:
        if d >= f.per_site and f.sites > 1:
            sharing = min(f.per_site, pof2)
            t = _step(f.alpha_wan, data, min(f.wan_bps / sharing, f.lan_bps))
        else:
            t = _step(f.alpha_lan, data, f.lan_bps)
        total += 2 * t  # the halving step and its mirror doubling step
        d //= 2
        data /= 2
    return total


def tree_time(f: Fabric, size: float, piece: float = 1 << 20) -> float:
    """Our pipelined binary tree: reduce all pieces up, then broadcast them down.

    Each phase is bounded by its busiest link: a parent's NIC carries both children (2S), and a
    site's WAN link carries every tree edge that crosses it. Pipeline fill costs depth steps.
    Where the real topology is known (``f.paths``), tree edges follow their sites' paths and
    share the links they cross: see tree_time_on_paths.
    """
    p = f.ranks
    if p == 1:
        return 0.0
    if f.paths is not None and f.sites > 1:
        return tree_time_on_paths(f, size, piece)
    site = [r // f.per_site for r in range(p)]
    wan_edges: dict[tuple[int, int], int] = {}
    for child in range(1, p):
        parent = (child - 1) // 2
        if site[child] != site[parent]:
            key = (min(site[child], site[parent]), max(site[child], site[parent]))
            wan_edges[key] = wan_edges.get(key, 0) + 1
    children = 2 if p > 2 else 1
    bottleneck = size * children * 8 / f.lan_bps
    alpha = f.alpha_lan
    if wan_edges:
        bottleneck = max(bottleneck, size * max(wan_edges.values()) * 8 / f.wan_bps)
        alpha = f.alpha_wan
    depth = int(math.floor(math.log2(p)))
    fill = depth * _step(alpha, min(piece, size), f.lan_bps)
    return 2 * (bottleneck + fill)


def tree_time_on_paths(f: Fabric, size: float, piece: float = 1 << 20) -> float:
    """The pipelined binary tree (parent of rank r: (r-1)//2) over the real paths, as its ranks
    run it (twin/model/flows.py): every rank's messages when it sends them, sharing every link
    their paths cross with whatever else is on it then, each multi-hop path paying its
    propagation and a frame's store-and-forward per WAN hop.

    Not level by level: a leaf sends as soon as the bucket is there whatever its depth (on the
    40-city fabric 20 leaves at depths 4 and 5 at once), an inner rank once both its children's
    pieces are in."""
    from twin.model.flows import tree_alone
    return tree_alone(f, size, piece)


def hier_time(f: Fabric, size: float) -> float:
    """Reduce-scatter in the site, all-reduce the S/k shard across sites, all-gather in the site.

    k inter-site rings run at once (one per local index) and share each site's WAN capacity.
    """
    k, m = f.per_site, f.sites
    local = 2 * (k - 1) * _step(f.alpha_lan, size / k, f.lan_bps) if k > 1 else 0.0
    if m == 1:
        return local
    share = min(f.wan_bps / k, f.lan_bps)
    inter = 2 * (m - 1) * _step(f.alpha_wan, size / k / m, share)
    return local + inter


def allreduce_time(algo: str, f: Fabric, size: float) -> float:
    if algo == "ring":
        return ring_time(f, size)
    if algo == "hd":
        return hd_time(f, size)
    if algo == "tree":
        return tree_time(f, size)
    if algo == "hier":
        return hier_time(f, size)
    raise ValueError(f"unknown algorithm {algo!r} (use {', '.join(ALLREDUCE_ALGOS)})")


def busbw(size: float, seconds: float, p: int) -> float:
    """NCCL-tests bus bandwidth of an all-reduce (bit/s)."""
    return size * 8 / seconds * 2 * (p - 1) / p if seconds > 0 else float("inf")

