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

from dataclasses import dataclass, field, replace
from typing import Mapping

Arc = tuple[int, int]  # a WAN link in one direction, by site index


@dataclass(frozen=True)
class SitePaths:
    """The real topology under the two-tier abstraction: the path traffic takes between every
    two sites (shortest delay, as the twin forwards without a controller) and each link's
    capacity per direction. A collective whose flows cross the same link at the same time
    shares it; the two-tier fabric alone cannot see that, the 40-city tree (up to 7 tree edges
    on one link) is where it matters."""

    delay: Mapping[Arc, float] = field(default_factory=dict)  # one-way propagation, site pair
    arcs: Mapping[Arc, tuple[Arc, ...]] = field(default_factory=dict)  # the links it crosses
    bps: Mapping[Arc, float] = field(default_factory=dict)  # a link's rate per direction
    # TCP payload of a full frame: what each delay line serializes whole before the next hop
    # sees it (store-and-forward); 0 ignores it
    frame_bytes: float = 0.0

    def store_and_forward(self, flow: Arc, nbytes: float) -> float:
        """What a message's last frame pays on the path's links besides its bottleneck (s): each
        delay line holds a whole frame for its serialization before the next hop sees any of
        it, while the fluid transfer counts the bottleneck's once. A one-frame ring step over
        a five-hop path at 25 Mbit/s pays four more frame times (~11 ms at MTU 9000)."""
        if not self.frame_bytes or len(self.arcs[flow]) < 2:
            return 0.0
        last = min(nbytes, self.frame_bytes) * 8
        serial = sorted(last / self.bps[a] for a in self.arcs[flow])
        return sum(serial[:-1])

    def rates(self, flows: list[Arc]) -> list[float]:
        """Each flow's rate when all of them run at once: its path's tightest link, shared
        equally by the flows crossing it (TCP's fair share)."""
        load: dict[Arc, int] = {}
        for f in flows:
            for a in self.arcs[f]:
                load[a] = load.get(a, 0) + 1
        return [min((self.bps[a] / load[a] for a in self.arcs[f]), default=float("inf"))
                for f in flows]


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
    paths: SitePaths | None = field(default=None, compare=False)  # the real topology, if known

    @property
    def ranks(self) -> int:
        return self.sites * self.per_site

    def single_site(self) -> "Fabric":
        """The same ranks and grouping in one data centre: the 'WAN' becomes the DC fabric
        (full bisection: every rank keeps its NIC rate, LAN latency, no hop pays propagation).
        The reference of every efficiency claim."""
        return replace(self, wan_bps=self.lan_bps * self.per_site, alpha_wan=self.alpha_lan,
                       ring_hop_delays=(), paths=None)


def ring_hops(f: Fabric, chunk: float) -> tuple[list[float], list[float]]:
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
    rate = [wan_bps if w else f.lan_bps for w in wan]
    if f.paths is not None and len(f.ring_hop_delays) == p:
        # every rank sends to its successor at once: hops whose paths cross the same link share it
        site = [r // f.per_site for r in range(p)]
        hops = [e for e in range(p) if wan[e]]
        shared = f.paths.rates([(site[e], site[(e + 1) % p]) for e in hops])
        for e, r in zip(hops, shared):
            rate[e] = min(r, f.lan_bps)
    x = [chunk * 8 / b for b in rate]
    latency = [f.alpha_lan + d for d in delays]
    if f.paths is not None and len(f.ring_hop_delays) == p:
        for e in range(p):
            if wan[e]:
                latency[e] += f.paths.store_and_forward((site[e], site[(e + 1) % p]), chunk)
    return x, latency


# ---- one training iteration --------------------------------------------------------


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
    wan = min(topo.emulated_rate(link.rate) for link in topo.links) * payload
    ring_sites = [s.name for s, _ in topo.workers()]  # ranks are numbered site by site
    hop_delays = tuple(delays[a][b] if a != b else 0.0
                       for a, b in zip(ring_sites, ring_sites[1:] + ring_sites[:1]))
    return Fabric(len(topo.sites), k, lan, wan, alpha_lan, worst + alpha_lan, hop_delays,
                  site_paths(topo, g, payload))


def site_paths(topo, g, payload: float) -> SitePaths:
    """Every site pair's shortest-delay path over the topology's graph, and every link's
    emulated rate (TCP payload) per direction."""
    import networkx as nx
    index = {s.name: i for i, s in enumerate(topo.sites)}
    paths = dict(nx.all_pairs_dijkstra_path(g, weight="delay"))
    delay, arcs = {}, {}
    for a, by in paths.items():
        for b, path in by.items():
            if a == b:
                continue
            key = (index[a], index[b])
            arcs[key] = tuple((index[u], index[v]) for u, v in zip(path, path[1:]))
            delay[key] = sum(g[u][v]["delay"] for u, v in zip(path, path[1:]))
    bps = {}
    for link in topo.links:
        rate = topo.emulated_rate(link.rate) * payload
        bps[(index[link.a], index[link.b])] = bps[(index[link.b], index[link.a])] = rate
    return SitePaths(delay, arcs, bps, frame_bytes=topo.mtu - 52)  # IPv4, TCP, timestamps
