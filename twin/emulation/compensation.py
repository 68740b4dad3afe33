"""Delay compensation: the host's own latency floor taken out of the long-haul links' delay stages,
so that what a worker measures across the fabric is the configured fiber delay.

Every frame the twin carries pays for the machine: the sender's stack and NIC queue, a pass
through the userspace switch at each site (OVS's netdev datapath here), the delay stage's own
hop, the receiver's stack. On these machines that is ~0.3-0.5 ms one way for a one-hop path,
measured when nothing else runs: a 1,368 km link (13.4 ms RTT) measured ~14.2 ms. Real switches
and NICs cost microseconds, so the floor is the emulator's error, not the fabric's.

When the twin comes up (forwarding installed, nothing else running) it measures in two steps.

1. The floor, with every delay stage at zero delay: each long-haul link's one-hop round trip,
   first worker of one end to first worker of the other (ping: the independent tool calibration
   uses; below 1 ms it reports microseconds), and each site's worker-to-worker round trip (where
   a site has two workers; for a site with one worker that carries transit traffic, derived from
   a two-hop path through it: lan(w) = rtt(u, w) + rtt(w, v) - rtt(u, w, v)).
2. The residual, with the configured delays and the floor taken off: the same one-hop round
   trips again, and what their median is still above the configured round trip is taken off
   too (measured at most ``ROUNDS`` times, until every link is within ``RESIDUAL_S``; each
   round's estimate of the whole excess is averaged with the earlier ones). The median is what
   calibration holds to the configured round trip; the fastest frames then arrive up to the
   machine's jitter before it, never earlier than the configured delay less the compensation.
   The floor alone is not enough: a delay stage that holds frames sleeps and wakes for each of
   them, and the switches behind it go idle between them, which a frame passing straight
   through never pays; on an idle 2-core machine the round trip at the configured delay
   exceeded the zero-delay floor by 0.3-0.5 ms.

One-way amounts are half the round trip (both directions cross the same elements). A frame
entering the WAN on a link has that link's whole one-hop amount taken off; a frame arriving from
another WAN link only what one more hop adds (a switch pass and a delay stage: the one-hop
amount less the entry site's worker-to-worker floor). The delay line tells them apart by the
source site in the worker's MAC; netem takes the one-hop amount off every frame (a path of n
hops then comes out (n-1) x lan/2 short; on the kernel datapath that is microseconds). No hold
is ever negative: where the floor exceeds the configured delay the link is as short as this
machine can make it, and `twin inspect` says so.

All of it is host time: under time dilation the floor is subtracted from the dilated delay, and
what it leaves in fabric time shrinks with K anyway.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import networkx as nx

from twin.emulation import liveness
from twin.emulation.links import set_long_haul_impairments
from twin.emulation.state import TwinState, WanInfo, WorkerInfo
from twin.emulation.tc import Compensation
from twin.errors import TwinError
from twin.measure.ping import median_rtt_ms, ping
from twin.plan.graph import fabric_graph
from twin.plan.routing import spanning_tree_ports

PINGS = 20  # per measured path: enough for a stable median of a sub-millisecond round trip
WARMUP = 3  # pings first sent and not counted: ARP, the switches' flow caches, the first wake-ups
INTERVAL_S = 0.01
PARALLEL = 12  # paths measured at once where there are many (pings are tiny)
RESIDUAL_PINGS = 40  # their median is what the residual is taken from
# ping's own default pacing (twin.measure.ping), as calibration sends: the longer the gaps between
# frames the more of each one's wake-ups the host pays (10 ms gaps measured ~0.2 ms less)
RESIDUAL_INTERVAL_S = 0.02
ROUNDS = 4  # measurements at the configured delay at most (the last one corrects nothing)
SEQUENTIAL_LINKS = 16  # up to this many links the residual is measured one link at a time
RESIDUAL_S = 0.05e-3  # a link within this of its configured round trip needs no more correction
ATTEMPTS = 3  # a path's pings sent again after a flap of the switches' link liveness
RETRY_PAUSE_S = 1.0

Progress = Callable[[str], None]


def compensate_floor(state: TwinState, progress: Progress = lambda s: None) -> None:
    """Measure the floor (delay stages at zero), give every delay stage its configured delay with
    the floor taken off, then take off what the configured delay still shows above it; records
    floors, compensations and the last round trips measured in ``state`` (whose ``site_delay_s``,
    each site's worker-link delay, is part of the configured worker-to-worker round trip)."""
    site_delay_s = state.site_delay_s
    for w in state.wan:
        _apply(state, w, zero=True)
    try:
        floors = measure_floors(state)
    except BaseException:
        for w in state.wan:  # the configured delays back, uncompensated
            _apply(state, w)
        raise
    lan = floors.lan

    def one_hop(w: WanInfo, first_s: float) -> None:
        _set_one_hop(state, w, first_s, lan.get(w.a, floors.typical_lan),
                     lan.get(w.b, floors.typical_lan))
    measured = [w for w in state.wan if _key(w) in floors.link]
    for w in measured:
        w.floor_rtt_s = floors.link[_key(w)]
        one_hop(w, w.floor_rtt_s / 2)
    state.lan_floor_rtt_s = dict(lan)
    state.compensated = True
    # each measurement estimates the link's whole excess at the configured delay (what it
    # measured plus what was taken off); the compensation is the mean of the estimates so far,
    # so the machine's noise between rounds averages out instead of being chased
    excess: dict[tuple[str, str], list[float]] = {_key(w): [] for w in measured}
    for round_ in range(ROUNDS):
        residual = measure_residuals(state, site_delay_s, measured)
        for w in measured:
            w.measured_rtt_s = configured_one_hop_rtt_s(state, w, site_delay_s) + residual[_key(w)]
            excess[_key(w)].append(residual[_key(w)] + 2 * w.comp_first_s)
        late = [w for w in measured if abs(residual[_key(w)]) > RESIDUAL_S]
        if not late or round_ == ROUNDS - 1:
            break
        for w in late:
            one_hop(w, statistics.fmean(excess[_key(w)]) / 2)
    # links no frame crosses one hop at a time (off the baseline's spanning tree): their ends'
    # workers reach each other the long way round, so the link cannot be measured; it carries
    # traffic only once forwarding changes, and then pays what the measured links pay (its
    # floor and measured round trip stay None)
    unmeasured = [w for w in state.wan if _key(w) not in floors.link]
    if unmeasured:
        typical = statistics.median(w.comp_first_s for w in measured)
        for w in unmeasured:
            one_hop(w, typical)
    short = [f"{w.a}-{w.b}" for w in measured if w.floor_exceeds_delay(state.time)]
    progress("delay compensation: one-hop floor "
             + _range_ms([w.floor_rtt_s for w in state.wan if w.floor_rtt_s is not None])
             + " ms round trip with the delay stages at zero; "
             + _range_ms([2 * w.comp_first_s for w in state.wan])
             + " ms taken out of the delay stages; round trip now "
             + _range_ms([w.measured_rtt_s - configured_one_hop_rtt_s(state, w, site_delay_s)
                          for w in state.wan if w.measured_rtt_s is not None], signed=True)
             + " ms off the configured one"
             + (f"; the floor exceeds the configured delay on {', '.join(short)}" if short else "")
             + (f"; {', '.join(f'{w.a}-{w.b}' for w in unmeasured)} off the baseline's spanning "
                "tree (no frame crosses it one hop at a time): not measured, given the measured "
                "links' median" if unmeasured else ""))


def _set_one_hop(state: TwinState, w: WanInfo, first_s: float, lan_a_s: float, lan_b_s: float) -> None:
    """A link's compensation from its one-hop amount (one way) and its ends' LAN floors (round
    trips); never negative."""
    w.comp_first_s = max(0.0, first_s)
    w.comp_transit_ab_s = max(0.0, w.comp_first_s - lan_a_s / 2)
    w.comp_transit_ba_s = max(0.0, w.comp_first_s - lan_b_s / 2)
    _apply(state, w)


def configured_one_hop_rtt_s(state: TwinState, w: WanInfo, site_delay_s: dict[str, float]) -> float:
    """The round trip between the first workers of a link's two ends, as configured (host time)."""
    return 2 * state.time.host_s(w.delay_s + site_delay_s.get(w.a, 0.0) + site_delay_s.get(w.b, 0.0))


def measure_residuals(state: TwinState, site_delay_s: dict[str, float],
                      links: list[WanInfo]) -> dict[tuple[str, str], float]:
    """Per link of ``links``: the median of the one-hop round trips measured now less the
    configured round trip (host time, s)."""
    first = _first_workers(state)
    pairs = [(first[w.a], first[w.b]) for w in links]
    # one link at a time, as calibration pings: pings on other links keep the shared switches
    # and CPUs awake and make every round trip shorter (0.2-0.5 ms here); many links at once
    # only where one at a time would take minutes
    with ThreadPoolExecutor(1 if len(pairs) <= SEQUENTIAL_LINKS else PARALLEL) as pool:
        rtts = list(pool.map(lambda pair: _median_s(
            _rtts(state, pair[0], pair[1], RESIDUAL_PINGS, RESIDUAL_INTERVAL_S)), pairs))
    return {_key(w): rtt - configured_one_hop_rtt_s(state, w, site_delay_s)
            for w, rtt in zip(links, rtts)}


def _first_workers(state: TwinState) -> dict[str, WorkerInfo]:
    first: dict[str, WorkerInfo] = {}
    for wk in state.workers:
        first.setdefault(wk.site, wk)
    return first


class Floors:
    """What compensate_floor measured (host time, round trips): per link, per site."""

    def __init__(self) -> None:
        self.link: dict[tuple[str, str], float] = {}
        self.lan: dict[str, float] = {}

    def link_between(self, x: str, y: str) -> float:
        return self.link[(x, y)] if (x, y) in self.link else self.link[(y, x)]

    @property
    def typical_lan(self) -> float:
        """For a site with neither two workers nor transit traffic through it: the median of the
        others (only failover detours use such a site's transit compensation)."""
        return statistics.median(self.lan.values()) if self.lan else 0.0


def measure_floors(state: TwinState) -> Floors:
    """Round trips with the delay stages at zero: every forwarded link's one-hop path (not the
    links off the baseline's spanning tree, see forwarding_graph), every site's LAN."""
    floors = Floors()
    first = _first_workers(state)
    by_site: dict[str, list[WorkerInfo]] = {}
    for wk in state.workers:
        by_site.setdefault(wk.site, []).append(wk)
    g = forwarding_graph(state)
    links = {_key(w): (first[w.a], first[w.b]) for w in state.wan if g.has_edge(w.a, w.b)}
    lans = {site: (ws[0], ws[1]) for site, ws in by_site.items() if len(ws) > 1}
    with ThreadPoolExecutor(PARALLEL) as pool:
        rtts = dict(zip(list(links) + list(lans),
                        pool.map(lambda pair: _median_rtt(state, *pair), list(links.values()) + list(lans.values()))))
    floors.link = {k: rtts[k] for k in links}
    floors.lan = {k: rtts[k] for k in lans}
    # sites with one worker that carry transit traffic: their LAN floor from a two-hop path
    via = {site: pair for site, pair in transit_pairs(state).items() if site not in floors.lan}
    if via:
        with ThreadPoolExecutor(PARALLEL) as pool:
            two_hop = dict(zip(via, pool.map(lambda p: _median_rtt(state, first[p[0]], first[p[1]]), via.values())))
        for site, (u, v) in via.items():
            rtt_uw = floors.link_between(u, site)
            rtt_wv = floors.link_between(site, v)
            floors.lan[site] = max(0.0, rtt_uw + rtt_wv - two_hop[site])
    return floors


def forwarding_graph(state: TwinState) -> nx.Graph:
    """The WAN links frames are forwarded over: all of them, or the baseline controller's
    spanning tree, where it forwards."""
    g = fabric_graph([{"a": w.a, "b": w.b, "delay_s": w.delay_s, "emulated_bps": w.emulated_bps,
                       "switch_a": w.switch_a, "switch_b": w.switch_b, "port_a": w.port_a,
                       "port_b": w.port_b} for w in state.wan])
    if state.controller == "baseline":
        tree_ports = {(sw, port) for sw, ports in spanning_tree_ports(g).items() for port in ports}
        g = g.edge_subgraph([(u, v) for u, v, d in g.edges(data=True) if d["ports"][u] in tree_ports])
    return g


def transit_pairs(state: TwinState) -> dict[str, tuple[str, str]]:
    """For each site some forwarded path crosses: two of its neighbours whose forwarding path is
    exactly neighbour-site-neighbour over the forwarding graph. The closest such pair, so its
    round trip is short."""
    g = forwarding_graph(state)
    out: dict[str, tuple[str, str]] = {}
    for site in g.nodes:
        best: Optional[tuple[float, str, str]] = None
        nbrs = sorted(g.neighbors(site))
        for i, u in enumerate(nbrs):
            for v in nbrs[i + 1:]:
                path = nx.shortest_path(g, u, v, weight="delay")
                if path == [u, site, v]:
                    cost = g[u][site]["delay"] + g[site][v]["delay"]
                    if best is None or cost < best[0]:
                        best = (cost, u, v)
        if best:
            out[site] = (best[1], best[2])
    return out


def _rtts(state: TwinState, src: WorkerInfo, dst: WorkerInfo, count: int,
          interval_s: float = INTERVAL_S) -> list[float]:
    """``count`` round trips (s) after ``WARMUP`` uncounted ones. A path that answers fewer than
    half is measured again (``ATTEMPTS`` in all) once the WAN ports' BFD sessions are up: on a
    slow or software-emulated CPU a session flaps when its 20 ms control packets are sent late
    (OVS logged 80-200 ms lateness in the stock-kernel guest), fast failover then has no live
    port on a one-link path, and every ping sent in the gap is lost."""
    rtts: list[float] = []
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
            if state.controller == "detpath":
                liveness.wait_bfd_up(liveness.wan_ports(state))
        rtts = ping(src, dst.ip, count + WARMUP, interval_s)[WARMUP:]
        if len(rtts) >= count // 2:
            return [r / 1e3 for r in rtts]
    raise TwinError(f"delay compensation: {src.name} -> {dst.name}: {len(rtts)} of {count} "
                    f"pings answered (best of {ATTEMPTS} attempts); is forwarding broken?")


def _median_rtt(state: TwinState, src: WorkerInfo, dst: WorkerInfo) -> float:
    return _median_s(_rtts(state, src, dst, PINGS))


def _median_s(rtts_s: list[float]) -> float:
    """The median round trip (s), read within the step ping printed each one in."""
    return median_rtt_ms([r * 1e3 for r in rtts_s]) / 1e3


def _apply(state: TwinState, w: WanInfo, zero: bool = False) -> None:
    """Give a link's delay stage its configured delay and compensation, or (``zero``) no delay,
    no jitter, no loss and no compensation, for measuring the floor."""
    shaping = w.shaping(state.mtu, state.time)
    if zero:
        shaping.delay_s = shaping.jitter_s = shaping.loss = 0.0
        shaping.compensation = Compensation(site_a=w.site_a_index, site_b=w.site_b_index)
    set_long_haul_impairments(w.delayline, [(w.intf_a, None), (w.intf_b, None)], shaping)


def _key(w: WanInfo) -> tuple[str, str]:
    return (w.a, w.b)


def _range_ms(values: list[float], signed: bool = False) -> str:
    if not values:
        return "-"
    lo, hi = min(values) * 1e3, max(values) * 1e3
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return fmt.format(lo) if abs(hi - lo) < 0.005 else f"{fmt.format(lo)}..{fmt.format(hi)}"
