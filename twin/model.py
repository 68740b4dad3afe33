"""The analytic model: alpha-beta costs of every collective the twin replays, on a two-tier
fabric (site LAN / WAN), and the overlap of bucketed gradient all-reduce with backward compute.

It predicts both the full-scale case (hundreds of GPUs, Tbit/s, thousands of km) and the scaled
case the twin emulates, so every measured row has a prediction and an error.

Fabric: M sites with k ranks each (p = M*k), ranks numbered site by site. A rank's NIC gives
B_L; each site's WAN capacity is B_W per direction, shared equally by the flows that cross it
at the same time; one WAN step costs alpha_W (one-way propagation + software), one LAN step
alpha_L. In a single-tier fabric (M = 1, or B_W = B_L and alpha_W = alpha_L) the formulas
reduce to the textbook ones in ../shared/REFERENCE.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import partial

ALGOS = ("ring", "hd", "tree", "hier")


@dataclass(frozen=True)
class Fabric:
    sites: int  # M
    per_site: int  # k ranks per site
    lan_bps: float  # B_L: a rank's NIC, bit/s
    wan_bps: float  # B_W: a site's WAN capacity per direction, bit/s
    alpha_lan: float  # s per LAN step (software + switching)
    alpha_wan: float  # s per WAN step (one-way propagation + software)
    # One-way propagation from ring position i's site to position i+1's (0 inside a site), when
    # the real topology is known: a ring over many sites pays each hop's own delay, not the
    # fabric's worst pair at every step. Empty: every WAN hop costs alpha_wan.
    ring_hop_delays: tuple[float, ...] = ()

    @property
    def ranks(self) -> int:
        return self.sites * self.per_site

    def single_site(self) -> "Fabric":
        """The same ranks and grouping in one data centre: the 'WAN' becomes the DC fabric
        (full bisection: every rank keeps its NIC rate, LAN latency). The reference of every
        efficiency claim."""
        return replace(self, wan_bps=self.lan_bps * self.per_site, alpha_wan=self.alpha_lan)


def _step(alpha: float, nbytes: float, bps: float) -> float:
    return alpha + nbytes * 8 / bps


def ring_time(f: Fabric, size: float) -> float:
    """2(p-1) steps of S/p, without a global lock-step.

    A rank starts a step as soon as it holds the chunk it must forward, so a chunk's 2(p-1) hops
    form a chain: the time is the longest chain of hops (each its own latency + transfer), or the
    busiest link's serial work (2(p-1) chunks back to back) plus one latency, whichever is
    longer. In a site-ordered ring with k ranks per site every k-th hop crosses the WAN, so a
    chain crosses it ceil(2(p-1)/k) times, not 2(p-1) times: measured on ci-2site at 3,000 km
    the lock-step form over-predicted the iteration by 29-37%, this one does not. With one rank
    per site (k = 1) or one site, both forms are the textbook 2(p-1)(alpha + S/(pB)).
    """
    p = f.ranks
    if p == 1:
        return 0.0
    hops = 2 * (p - 1)
    if f.sites == 1:
        return hops * _step(f.alpha_lan, size / p, f.lan_bps)
    # hop e costs its latency + its transfer; the longest chain of `hops` consecutive hops
    # around the ring, or the busiest hop's serial work plus one latency
    x, lat = _ring_hops(f, size / p)
    cost = [le + xe for le, xe in zip(lat, x)]
    laps, rest = divmod(hops, p)
    around = list(itertools.accumulate(cost + cost, initial=0.0))  # window sums in O(p)
    chain = laps * around[p] + max(around[j + rest] - around[j] for j in range(p))
    busiest = hops * max(x) + max(lat)
    return max(chain, busiest)


def _ring_hops(f: Fabric, chunk: float) -> tuple[list[float], list[float]]:
    """(transfer, latency) of ring hop e, position e to e+1, for one chunk: latency is
    alpha_lan plus the hop's one-way propagation (0 inside a site)."""
    p = f.ranks
    wan_bps = min(f.wan_bps, f.lan_bps)  # each site's WAN link carries one ring flow per direction
    if len(f.ring_hop_delays) == p:
        delays = f.ring_hop_delays
        wan = [d > 0 for d in delays]
    else:  # two-tier: every k-th hop (the last rank of a site to the next site) crosses the WAN
        wan = [(e + 1) % f.per_site == 0 and f.sites > 1 for e in range(p)]
        delays = tuple(f.alpha_wan - f.alpha_lan if w else 0.0 for w in wan)
    x = [chunk * 8 / (wan_bps if w else f.lan_bps) for w in wan]
    return x, [f.alpha_lan + d for d in delays]


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
    """
    p = f.ranks
    if p == 1:
        return 0.0
    site = [r // f.per_site for r in range(p)]
    wan_edges: dict[tuple[int, int], int] = {}
    for child in range(1, p):
        parent = (child - 1) // 2
        if site[child] != site[parent]:
            key = tuple(sorted((site[child], site[parent])))
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
    raise ValueError(f"unknown algorithm {algo!r} (use {', '.join(ALGOS)})")


def busbw(size: float, seconds: float, p: int) -> float:
    """NCCL-tests bus bandwidth of an all-reduce (bit/s)."""
    return size * 8 / seconds * 2 * (p - 1) / p if seconds > 0 else float("inf")


# ---- one training iteration --------------------------------------------------------

@dataclass(frozen=True)
class Iteration:
    forward: float  # s
    backward: float  # s
    optimizer: float  # s
    buckets: tuple[float, ...]  # gradient bucket sizes in bytes, in the order backward produces them
    overlap: bool = True

    @property
    def compute(self) -> float:
        return self.forward + self.backward + self.optimizer


@dataclass(frozen=True)
class IterationPrediction:
    iteration: float
    compute: float
    communication: float  # sum of all-reduce times
    exposed: float  # communication not hidden behind backward compute

    @property
    def efficiency(self) -> float:
        """eta = T_compute / (T_compute + T_exposed)."""
        return self.compute / (self.compute + self.exposed)


def ready_times(it: Iteration) -> list[float]:
    """When each bucket's gradient exists: backward produces them at a uniform rate (overlap),
    or all of them at its end."""
    total = sum(it.buckets) or 1.0
    end_bwd = it.forward + it.backward
    ready, produced = [], 0.0
    for b in it.buckets:
        produced += b
        ready.append(it.forward + it.backward * produced / total if it.overlap else end_bwd)
    return ready


def iteration_time(it: Iteration, comm_time, sequence=None) -> IterationPrediction:
    """Schedule the buckets: bucket j starts when backward has produced it and the previous
    all-reduce is done (without overlap, all start after backward).

    ``sequence(sizes, ready)``, when given, returns when the last all-reduce ends with ranks
    running the buckets back to back without a barrier (twin/pipelining.py); otherwise each
    all-reduce takes ``comm_time(size)`` after the previous one ends.
    """
    ready = ready_times(it)
    end_bwd = it.forward + it.backward
    comm = sum(comm_time(b) for b in it.buckets)
    if sequence is not None and it.buckets:
        t = sequence(list(it.buckets), ready)
    else:
        t = 0.0
        for b, r in zip(it.buckets, ready):
            t = max(t, r) + comm_time(b)
    iteration = max(end_bwd, t) + it.optimizer
    return IterationPrediction(iteration, it.compute, comm, iteration - it.compute)


def buckets(total_bytes: float, bucket_bytes: float) -> tuple[float, ...]:
    """Split a gradient into DDP-style buckets (last one partial)."""
    if total_bytes <= 0:
        return ()
    n = max(1, math.ceil(total_bytes / bucket_bytes))
    full = [bucket_bytes] * (n - 1)
    return tuple(full + [total_bytes - bucket_bytes * (n - 1)])


def predict(algo: str, f: Fabric, it: Iteration) -> IterationPrediction:
    """Ring and hierarchical buckets pipeline rank by rank (twin/pipelining.py: on ci-2site,
    adding up isolated rings predicted a 25 Mbit/s WAN's iterations up to 5.9% too slow); tree
    and halving-doubling are added up bucket after bucket."""
    from twin import pipelining
    sequence = (partial(pipelining.sequence_finish, algo, f) if algo in pipelining.OPS else None)
    return iteration_time(it, lambda b: allreduce_time(algo, f, b), sequence)


def best_single_site(f: Fabric, it: Iteration) -> tuple[str, IterationPrediction]:
    """The single data centre runs its best algorithm: that is what a claim is measured against."""
    one = f.single_site()
    return min(((a, predict(a, one, it)) for a in ALGOS), key=lambda x: x[1].iteration)


def efficiency_vs_single_site(algo: str, f: Fabric, it: Iteration
                              ) -> tuple[float, IterationPrediction, IterationPrediction]:
    """(single-site iteration / spread iteration, spread prediction, single-site prediction)."""
    spread = predict(algo, f, it)
    _, single = best_single_site(f, it)
    return single.iteration / spread.iteration, spread, single


# ---- from a topology: the scaled fabric the twin emulates ----------------------------

def fabric_from_topology(topo, alpha_lan: float = 2e-4) -> Fabric:
    """The emulated (scaled) fabric of a topology, as the model sees it.

    Rates are the emulated ones times TCP's payload share; alpha_wan is the largest one-way
    delay between sites along the shortest paths plus the LAN software/switching cost; the ring
    gets each hop's own shortest-path delay.
    """
    import networkx as nx
    per_site = {s.workers for s in topo.sites}
    k = max(per_site)
    payload = topo.tcp_payload_share()
    lan = min(topo.emulated_rate(s.fabric.rate) for s in topo.sites) * payload
    if len(topo.sites) == 1:
        return Fabric(1, k, lan, lan * k, alpha_lan, alpha_lan)
    g = topo.graph()
    delays = dict(nx.all_pairs_dijkstra_path_length(g, weight="delay"))
    worst = max(delays[a][b] for a in delays for b in delays[a])
    wan = min(topo.emulated_rate(l.rate) for l in topo.links) * payload
    ring_sites = [s.name for s, _ in topo.workers()]  # ranks are numbered site by site
    hop_delays = tuple(delays[a][b] if a != b else 0.0
                       for a, b in zip(ring_sites, ring_sites[1:] + ring_sites[:1]))
    return Fabric(len(topo.sites), k, lan, wan, alpha_lan, worst + alpha_lan, hop_delays)
