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

from dataclasses import dataclass, replace


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
        (full bisection: every rank keeps its NIC rate, LAN latency, no hop pays propagation).
        The reference of every efficiency claim."""
        return replace(self, wan_bps=self.lan_bps * self.per_site, alpha_wan=self.alpha_lan,
                       ring_hop_delays=())


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
    x = [chunk * 8 / (wan_bps if w else f.lan_bps) for w in wan]
    return x, [f.alpha_lan + d for d in delays]


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
    return Fabric(len(topo.sites), k, lan, wan, alpha_lan, worst + alpha_lan, hop_delays)
