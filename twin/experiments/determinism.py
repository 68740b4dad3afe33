"""The A/B experiment behind FNTF's claim: deterministic reserved paths vs best effort.

Same topology, links and interference for both controllers (detpath, baseline):
1. channels: a reserved channel (the job's TCP port, so detpath marks it) and a best-effort
   channel, each offered half of the WAN link's rate, first alone, then with UDP interference
   at 100% of the link's rate (FNTF's demo: deterministic stayed ~50 Gbit/s, best effort fell
   below 1 Gbit/s), in MTU-sized frames, then in 1,400-byte datagrams;
2. a probe in the reserved class: one-way delay percentiles, PDV, loss, reordering, with and
   without interference;
3. failover (meshed topologies): cut the first WAN link of the probe's path during the probe
   and report the delivery gap and packets lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import networkx as nx

from traffic.probe import ipdv_summary, percentile
from twin.drive.crosstraffic import (
    SMALL_DATAGRAM,
    start_flow,
    start_interference,
    start_probe,
)
from twin.emulation import delayline, runtime
from twin.emulation.state import TwinState, WanInfo
from twin.plan.routing import fabric_graph, spanning_tree_ports
from twin.spec.topology import Topology
from twin.units import tcp_payload_share

RESERVED_PORT = 29500  # a port of the job's reservation (see the topology's reservations)
PROBE_PORT = 7100
# "half a link" in TCP goodput: two channels of (TCP payload share) x half the line rate exactly
# fill it; 90% of that leaves the probe and the acknowledgements room.
CHANNEL_SHARE = 0.9
# Interference in full frames of the fabric's MTU, then the same rate in 1,400-byte datagrams:
# 6x the packets at 9,000 bytes, a stress of the emulator's per-packet CPU more than of the network.
SMALL_FRAMES = "interference-small-frames"
PHASES = ("alone", "interference", SMALL_FRAMES)
PROBE_WARMUP_S = 1.0  # channels run this long before the probe starts
PROBE_MARGIN_S = 3.0  # warm-up + the probe's own start (receiver first) + its end before the flows'
Progress = Callable[[str], None]


@dataclass
class DeterminismRow:
    topology: str
    controller: str
    repeat: int  # 0-based: the channel phases are repeated, the tail of a delay varies run to run
    phase: str  # alone | interference | interference-small-frames | failover
    metric: str  # what the row measures
    src: str
    dst: str
    offered_mbps: float
    goodput_mbps: float
    share_of_offered: float
    owd_min_ms: float
    owd_p50_ms: float
    owd_p99_ms: float
    owd_p999_ms: float
    owd_max_ms: float
    pdv_ms: float
    loss: float
    reordered: int
    gap_ms: float
    propagation_ms: float
    link_mbps: float
    scale: str
    mechanism: str
    # the delay line of the probe's WAN link during the probe (both directions; blank on netem):
    # frames it carried, how late it released them (p99, p99.9: upper edge of a power-of-two
    # bucket) and the share released >= 0.5 ms late. The emulator's own error, next to the probe's.
    line_frames: Optional[int] = None
    line_late_p99_ms: Optional[float] = None
    line_late_p999_ms: Optional[float] = None
    line_late_share: Optional[float] = None
    # probe rows: IPDV (RFC 3393), consecutive packets in send order, signed, no pair across a
    # loss; abs_p99: p99 of its magnitude
    ipdv_min_ms: Optional[float] = None
    ipdv_p50_ms: Optional[float] = None
    ipdv_p99_ms: Optional[float] = None
    ipdv_max_ms: Optional[float] = None
    ipdv_abs_p99_ms: Optional[float] = None


IPDV_FIELDS = ("ipdv_min_ms", "ipdv_p50_ms", "ipdv_p99_ms", "ipdv_max_ms", "ipdv_abs_p99_ms")


@dataclass
class ProbeSamples:
    """Per-packet values of the channel phases' probes, per "controller, phase", every repeat
    together: one-way delays (the CDF plot, pooled percentiles) and IPDVs (each run's own pairs:
    no pair spans two runs)."""

    delays: dict[str, list[float]] = field(default_factory=dict)
    ipdv: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, probe: dict) -> None:
        """One probe's result (traffic.probe's summary) under ``key``."""
        self.delays.setdefault(key, []).extend(probe.get("delays_ms", []))
        self.ipdv.setdefault(key, []).extend(probe.get("ipdv_ms", []))

    def extend(self, other: ProbeSamples) -> None:
        for key, values in other.delays.items():
            self.delays.setdefault(key, []).extend(values)
        for key, values in other.ipdv.items():
            self.ipdv.setdefault(key, []).extend(values)


def _row(topo, state, controller, phase, metric, src, dst, link_bps, prop_ms, repeat=0,
         **kw) -> DeterminismRow:
    base = dict(topology=topo.name, controller=controller, repeat=repeat, phase=phase, metric=metric, src=src,
                dst=dst, offered_mbps=0.0, goodput_mbps=0.0, share_of_offered=0.0, owd_min_ms=0.0,
                owd_p50_ms=0.0, owd_p99_ms=0.0, owd_p999_ms=0.0, owd_max_ms=0.0, pdv_ms=0.0,
                loss=0.0, reordered=0, gap_ms=0.0, propagation_ms=round(prop_ms, 3),
                link_mbps=link_bps / 1e6, scale=topo.scale.describe(), mechanism=state.mechanism)
    base.update(kw)
    return DeterminismRow(**base)


def _probe_fields(p: dict) -> dict:
    return {k: round(p[k], 4) if isinstance(p[k], float) else p[k]
            for k in ("owd_min_ms", "owd_p50_ms", "owd_p99_ms", "owd_p999_ms", "owd_max_ms",
                      "pdv_ms", "loss", "reordered") + IPDV_FIELDS}


def channels(topo: Topology, state: TwinState, controller: str, seconds: float,
             progress: Progress, repeat: int = 0) -> tuple[list[DeterminismRow], ProbeSamples]:
    """Reserved + best-effort channels, alone and under 100% interference, with a probe."""
    a, b = topo.links[0].a, topo.links[0].b
    wa = [w for w in state.workers if w.site == a]
    wb = [w for w in state.workers if w.site == b]
    wan = next(w for w in state.wan if {w.a, w.b} == {a, b})
    link, prop = wan.emulated_bps, wan.delay_s * 1e3
    rows: list[DeterminismRow] = []
    samples = ProbeSamples()
    probe_s = max(1.0, seconds - PROBE_MARGIN_S)
    for phase in PHASES:
        progress(f"{controller}: channels {phase} ({seconds:g} s, repeat {repeat + 1})")
        half = link / 2 * CHANNEL_SHARE * tcp_payload_share(state.mtu)
        res = start_flow(wa[0], wb[0], RESERVED_PORT, half, "tcp", seconds)
        be = start_flow(wa[-1], wb[-1], 5301, half, "tcp", seconds)
        # interference shares only the WAN egress with the reserved channel (not its NICs)
        noise = None
        if phase == "interference":
            noise = start_interference(wa[-1], wb[-1], 5302, link, seconds, state.mtu)
        elif phase == SMALL_FRAMES:
            noise = start_flow(wa[-1], wb[-1], 5302, link, "udp", seconds, datagram=SMALL_DATAGRAM)
        # the probe sees the channels in steady state, not the launch of their processes (a
        # docker exec and three iperf3 starting cost the 2 cores tens of ms)
        time.sleep(PROBE_WARMUP_S)
        line_before = _line_stats(wan)
        probe = start_probe(wa[0], wb[0], PROBE_PORT, pps=500, count=int(500 * probe_s))
        p = probe.result()
        line = _line_lateness(wan, line_before)
        for name, flow in (("reserved channel", res), ("best-effort channel", be),
                           ("interference", noise)):
            if flow is None:
                continue
            bps, _ = flow.result()
            rows.append(_row(topo, state, controller, phase, name, flow.src.name, flow.dst.name,
                             link, prop, repeat, offered_mbps=flow.rate_bps / 1e6,
                             goodput_mbps=round(bps / 1e6, 2),
                             share_of_offered=round(bps / flow.rate_bps, 4)))
        samples.add(f"{controller}, {phase}", p)
        rows.append(_row(topo, state, controller, phase, "probe (reserved class)", wa[0].name,
                         wb[0].name, link, prop, repeat, **_probe_fields(p), **line))
    return rows, samples


def _line_stats(wan: WanInfo) -> dict:
    if not wan.delayline:
        return {}
    return delayline.read_stats(wan.delayline.params_file, wan.delayline.pid)


def _line_lateness(wan: WanInfo, before: dict) -> dict:
    """DeterminismRow's line_* fields for the frames the link carried since ``before``."""
    if not wan.delayline:
        return {}
    late = delayline.lateness(before, _line_stats(wan))
    return {"line_frames": late["frames"], "line_late_p99_ms": late["late_p99_ms"],
            "line_late_p999_ms": late["late_p999_ms"],
            "line_late_share": round(late["late_share"], 5)}


@dataclass
class PooledProbe:
    """One controller and phase, every repeat's probe packets together: the tail of a delay
    distribution is estimated better from all of them than from any single 7 s run."""

    topology: str
    controller: str
    phase: str
    repeats: int
    probes: int
    owd_p50_ms: float
    owd_p99_ms: float
    owd_p999_ms: float
    owd_max_ms: float
    propagation_ms: float
    p99_over_propagation_ms: float
    scale: str
    mechanism: str
    # the machine, idle, just before the experiment (twin.wakeup): how late a real-time thread
    # woke from 1 ms sleeps (p99.9) and how often every CPU stalled at once (the VM not running)
    machine_wakeup_p999_ms: Optional[float] = None
    machine_stalls_all_cpus: Optional[int] = None
    # IPDV of every repeat's pairs together (as DeterminismRow's)
    ipdv_min_ms: Optional[float] = None
    ipdv_p50_ms: Optional[float] = None
    ipdv_p99_ms: Optional[float] = None
    ipdv_max_ms: Optional[float] = None
    ipdv_abs_p99_ms: Optional[float] = None


def pooled(rows: list[DeterminismRow], samples: ProbeSamples,
           machine: Optional[dict] = None) -> list[PooledProbe]:
    """Pooled percentiles per (controller, phase) of the channel phases' probes; ``machine``: a
    twin.wakeup survey taken before the run."""
    out = []
    for key, values in samples.delays.items():
        controller, phase = key.split(", ", 1)
        mine = [r for r in rows if r.controller == controller and r.phase == phase
                and r.metric.startswith("probe")]
        if not values or not mine:
            continue
        prop = mine[0].propagation_ms
        p99 = percentile(values, 99)
        ipdv = ipdv_summary(samples.ipdv.get(key, []))
        out.append(PooledProbe(
            topology=mine[0].topology, controller=controller, phase=phase, repeats=len(mine),
            probes=len(values), owd_p50_ms=round(percentile(values, 50), 4),
            owd_p99_ms=round(p99, 4), owd_p999_ms=round(percentile(values, 99.9), 4),
            owd_max_ms=round(max(values), 4), propagation_ms=prop,
            p99_over_propagation_ms=round(p99 - prop, 4), scale=mine[0].scale,
            mechanism=mine[0].mechanism,
            machine_wakeup_p999_ms=round(machine["p999_ms"], 3) if machine else None,
            machine_stalls_all_cpus=machine["all_cpus_stalled"] if machine else None,
            **{k: None if ipdv[k] is None else round(ipdv[k], 4) for k in IPDV_FIELDS}))
    return out


def failover(topo: Topology, state: TwinState, controller: str, progress: Progress,
             seconds: float = 6.0, pps: float = 1000, port: int = PROBE_PORT,
             protection: str = "") -> DeterminismRow:
    """Cut the first WAN link on the probe's current path; the probe measures the gap.

    ``port``/``protection``: a probe port the reservation sends 1+1 and its label; the cut is
    the same, on the primary path."""
    g = fabric_graph([w.__dict__ for w in state.wan])
    src_site, dst_site = topo.links[0].a, topo.links[0].b
    if controller == "baseline":
        tree_edges = {(sw, p) for sw, ports in spanning_tree_ports(g).items() for p in ports}
        tree = g.edge_subgraph([(u, v) for u, v, d in g.edges(data=True)
                                if d["ports"][u] in tree_edges])
        path = nx.shortest_path(tree, src_site, dst_site)
    else:
        path = nx.shortest_path(g, src_site, dst_site, weight="delay")
    cut = (path[0], path[1])
    src = next(w for w in state.workers if w.site == src_site)
    dst = next(w for w in state.workers if w.site == dst_site)
    label = f"cut {cut[0]}-{cut[1]}" + (f" ({protection})" if protection else "")
    progress(f"{controller}: failover, {label} during a {seconds:g} s probe")
    probe = start_probe(src, dst, port, pps=pps, count=int(pps * seconds))
    time.sleep(seconds / 3)
    runtime.set_link_state(*cut, up_=False)
    try:
        p = probe.result()
    finally:
        runtime.set_link_state(*cut, up_=True)
    wan = next(w for w in state.wan if {w.a, w.b} == set(cut))
    return _row(topo, state, controller, "failover", label, src.name, dst.name,
                wan.emulated_bps, wan.delay_s * 1e3, gap_ms=round(p["max_gap_packets"] * 1000 / pps, 2),
                **_probe_fields(p))


def replicated_probe_port(topo: Topology) -> Optional[int]:
    """A port the reservation between the first link's sites sends 1+1, if any."""
    a, b = topo.links[0].a, topo.links[0].b
    for r in topo.reservations:
        if {r.a, r.b} == {a, b} and r.replicated_udp_ports:
            return r.replicated_udp_ports[0]
    return None


def run(topo: Topology, path: str, seconds: float = 8.0, controllers=("detpath", "baseline"),
        progress: Progress = lambda s: None, repeats: int = 1
        ) -> tuple[list[DeterminismRow], ProbeSamples]:
    """Every controller on the same twin definition; the samples pool each phase's repeats."""
    rows: list[DeterminismRow] = []
    samples = ProbeSamples()
    for controller in controllers:
        _, state = runtime.up(topo, path, controller, progress)
        try:
            for repeat in range(repeats):
                r, d = channels(topo, state, controller, seconds, progress, repeat)
                rows += r
                samples.extend(d)
            if len(topo.links) > 1:
                rows.append(failover(topo, state, controller, progress))
                replicated = replicated_probe_port(topo)
                if controller == "detpath" and replicated:
                    rows.append(failover(topo, state, controller, progress, port=replicated,
                                         protection="1+1"))
        finally:
            runtime.down()
    return rows, samples
