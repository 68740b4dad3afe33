"""Calibration: configured vs measured for every WAN link and cross-site worker pair.

Independent tools: ping for RTT, iperf3 for TCP throughput, and the timestamped probe
(traffic.probe) for one-way delay in each direction. All containers share the host's clock and
the probe reads the receiving kernel's timestamp, so one-way delay is exact, and delay
variation is the network's own per direction (RFC 5481 PDV, RFC 3393 IPDV), not the sum of two
directions and two ping processes' wake-ups.

Three targets per path, each "ok", "missed" or "not measured":
- RTT: ping's median (read within the step ping prints in, twin.measure.ping) within
  max(2%, 0.2 ms) of the configured round trip;
- PDV: the one-way PDV (p99.9 - minimum) of both directions <= 0.5 ms. "Not measured" where
  this machine cannot hold that: the same probe through the scratch switch, one switch pass and
  no delay stage, already varies more (twin.measure.ceiling), unless the path met it anyway;
- TCP: one flow's goodput, as Ethernet frames, >= 95% of the path's emulated rate. "Not
  measured" where this machine cannot carry that much at all: 95% of the rate above what one
  TCP flow reaches through a scratch switch with nothing shaping it (twin.measure.ceiling),
  unless the path reached the target anyway.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import networkx as nx

from traffic.probe import percentile
from twin.drive.crosstraffic import start_probe
from twin.emulation.controller import running_reservations
from twin.emulation.state import TwinState, WorkerInfo
from twin.measure.ceiling import Ceiling, measure_ceiling
from twin.measure.iperf import IPERF_PORT, iperf
from twin.measure.ping import median_rtt_ms, ping
from twin.output.csvrows import write_rows
from twin.plan.dilation import REAL_TIME, Dilation
from twin.plan.graph import fabric_graph
from twin.plan.reservations import free_port
from twin.units import tcp_payload_share

OK, MISSED, NOT_MEASURED = "ok", "missed", "not measured"
RTT_TOLERANCE, RTT_TOLERANCE_MS = 0.02, 0.2
PDV_TARGET_MS = 0.5
WIRE_RATIO_TARGET = 0.95
# one-way delay: 1,000 probes 2 ms apart per direction (p99.9 is then the second largest)
# The probe's UDP and iperf3's TCP port, or the first above that no reservation of the running
# twin claims (free_port): calibration measures the path as every flow sees it, best effort.
PROBE_PORT = 7200
PROBE_PPS = 500
PROBE_COUNT = 1000
PING_INTERVAL_S = 0.02
ONE_WAY_FIELDS = ("owd_min_ms", "owd_p50_ms", "owd_p99_ms", "owd_p999_ms", "pdv_ms",
                  "ipdv_min_ms", "ipdv_p50_ms", "ipdv_p99_ms", "ipdv_max_ms", "ipdv_abs_p99_ms",
                  "loss", "reordered")


@dataclass
class CalibrationRow:
    kind: str  # 'wan-link' or 'worker-pair'
    src: str
    dst: str
    hops: int
    configured_rtt_ms: float
    measured_rtt_min_ms: float
    measured_rtt_median_ms: float
    rtt_error_ms: float
    rtt_ok: bool
    pdv_ms: float  # p99 - min of ping's RTTs (the target is on one-way PDV: pdv_status)
    pdv_ok: bool
    emulated_rate_mbps: float
    goodput_mbps: float
    goodput_ratio: float
    wire_ratio: float  # goodput scaled to Ethernet frames, comparable with the line rate
    throughput_ok: bool
    retransmits: int
    mechanism: str
    scale: str
    rtt_status: str  # ok | missed
    pdv_status: str  # ok | missed | not measured
    throughput_status: str  # ok | missed | not measured
    machine_tcp_ceiling_mbps: float  # one TCP flow through an unshaped scratch switch (x K dilated)
    machine_pdv_floor_ms: Optional[float]  # the probe's one-way PDV through that switch (/ K dilated)
    configured_owd_ms: float
    # the probe src -> dst (fwd) and dst -> src (rev): one-way delay, PDV = p99.9 - min
    # (RFC 5481), IPDV (RFC 3393), loss, reordered (RFC 4737)
    fwd_owd_min_ms: float
    fwd_owd_p50_ms: float
    fwd_owd_p99_ms: float
    fwd_owd_p999_ms: float
    fwd_pdv_ms: float
    fwd_ipdv_min_ms: Optional[float]
    fwd_ipdv_p50_ms: Optional[float]
    fwd_ipdv_p99_ms: Optional[float]
    fwd_ipdv_max_ms: Optional[float]
    fwd_ipdv_abs_p99_ms: Optional[float]
    fwd_loss: float
    fwd_reordered: int
    rev_owd_min_ms: float
    rev_owd_p50_ms: float
    rev_owd_p99_ms: float
    rev_owd_p999_ms: float
    rev_pdv_ms: float
    rev_ipdv_min_ms: Optional[float]
    rev_ipdv_p50_ms: Optional[float]
    rev_ipdv_p99_ms: Optional[float]
    rev_ipdv_max_ms: Optional[float]
    rev_ipdv_abs_p99_ms: Optional[float]
    rev_loss: float
    rev_reordered: int
    # delay compensation (twin.emulation.compensation), round trips in fabric time: the path's
    # latency floor measured with the delay stages at zero (one-hop paths; empty where the path
    # has more hops) and what the delay stages take off along it
    floor_rtt_ms: Optional[float] = None
    compensation_rtt_ms: float = 0.0
    dilation: float = 1.0

    def statuses(self) -> tuple[str, str, str]:
        return self.rtt_status, self.pdv_status, self.throughput_status


def path_properties(g: nx.Graph, src_site: str, dst_site: str,
                    fabric: dict[str, tuple[float, float]]) -> tuple[float, float, int]:
    """(configured one-way delay s, bottleneck emulated bit/s, WAN hops) along the forwarding path.

    ``g`` is the fabric graph (twin.plan.graph); ``fabric`` maps site -> (delay s, emulated bit/s)
    for the worker links at both ends.
    """
    path = nx.dijkstra_path(g, src_site, dst_site, weight="delay") if src_site != dst_site else [src_site]
    delay = fabric[src_site][0] + fabric[dst_site][0]
    rate = min(fabric[src_site][1], fabric[dst_site][1])
    for u, v in zip(path, path[1:]):
        delay += g[u][v]["delay"]
        rate = min(rate, g[u][v]["capacity"])
    return delay, rate, len(path) - 1


def rtt_status(error_ms: float, configured_rtt_ms: float) -> str:
    return OK if abs(error_ms) <= max(RTT_TOLERANCE * configured_rtt_ms, RTT_TOLERANCE_MS) else MISSED


def pdv_status(fwd_pdv_ms: float, rev_pdv_ms: float, machine_pdv_ms: Optional[float] = None) -> str:
    """Ok where both directions meet the target; where one does not, a miss only if this
    machine's own floor (``machine_pdv_ms``, the scratch switch's PDV) is within the target."""
    if max(fwd_pdv_ms, rev_pdv_ms) <= PDV_TARGET_MS:
        return OK
    return NOT_MEASURED if machine_pdv_ms is not None and machine_pdv_ms > PDV_TARGET_MS else MISSED


def throughput_status(wire_ratio: float, rate_bps: float, ceiling: Ceiling) -> str:
    """A path that reached the target is ok whatever the ceiling says; one that did not is a
    miss only where the machine could have carried the target rate."""
    if wire_ratio >= WIRE_RATIO_TARGET:
        return OK
    return NOT_MEASURED if WIRE_RATIO_TARGET * rate_bps > ceiling.wire_bps else MISSED


def one_way_fields(direction: str, probe: dict) -> dict:
    """CalibrationRow's ``fwd_*`` or ``rev_*`` fields from one traffic.probe result."""
    return {f"{direction}_{k}": round(probe[k], 4) if isinstance(probe[k], float) else probe[k]
            for k in ONE_WAY_FIELDS}


def calibration_row(kind: str, src: str, dst: str, hops: int, delay_s: float, rate_bps: float,
                    rtts: list[float], fwd: dict, rev: dict, goodput_bps: float,
                    retransmits: int, ceiling: Ceiling, mechanism: str,
                    scale: str) -> CalibrationRow:
    """One path's row from its measurements: ping RTTs (ms), the probe's result in each
    direction, iperf3's goodput, and the machine's ceiling (measured at the twin's MTU, which
    also turns goodput into frames)."""
    cfg_rtt = 2 * delay_s * 1e3
    rtt_min, rtt_med = min(rtts), median_rtt_ms(rtts)
    err = rtt_med - cfg_rtt
    ratio = goodput_bps / rate_bps
    wire = ratio / tcp_payload_share(ceiling.mtu)
    rtt, pdv = rtt_status(err, cfg_rtt), pdv_status(fwd["pdv_ms"], rev["pdv_ms"], ceiling.pdv_ms)
    tcp = throughput_status(wire, rate_bps, ceiling)
    return CalibrationRow(
        kind=kind, src=src, dst=dst, hops=hops, configured_rtt_ms=round(cfg_rtt, 3),
        measured_rtt_min_ms=round(rtt_min, 3), measured_rtt_median_ms=round(rtt_med, 3),
        rtt_error_ms=round(err, 3), rtt_ok=rtt == OK,
        pdv_ms=round(percentile(rtts, 99) - rtt_min, 3), pdv_ok=pdv == OK,
        emulated_rate_mbps=round(rate_bps / 1e6, 3), goodput_mbps=round(goodput_bps / 1e6, 2),
        goodput_ratio=round(ratio, 4), wire_ratio=round(wire, 4), throughput_ok=tcp == OK,
        retransmits=retransmits, mechanism=mechanism, scale=scale, rtt_status=rtt,
        pdv_status=pdv, throughput_status=tcp,
        machine_tcp_ceiling_mbps=round(ceiling.goodput_bps / 1e6, 1),
        machine_pdv_floor_ms=None if ceiling.pdv_ms is None else round(ceiling.pdv_ms, 4),
        configured_owd_ms=round(delay_s * 1e3, 3),
        **one_way_fields("fwd", fwd), **one_way_fields("rev", rev))


def one_way(src: WorkerInfo, dst: WorkerInfo, time_: Dilation = REAL_TIME,
            port: int = PROBE_PORT) -> dict:
    """The probe's result from ``src`` to ``dst``, in fabric time (raises if nothing arrived):
    under dilation K the probes go K times farther apart and every delay is divided by K."""
    result = start_probe(src, dst, port, pps=PROBE_PPS / time_.k, count=PROBE_COUNT).result()
    if not result.get("received"):
        raise RuntimeError(f"no probe packet from {src.name} reached {dst.name} ({dst.ip})")
    return {k: time_.fabric_s(v) if k.endswith("_ms") and isinstance(v, float) else v
            for k, v in result.items()}


def direction_compensation(state: TwinState, sites: list[str]) -> float:
    """What the delay stages take off a frame sent along ``sites`` (host time, s, one way): delay
    lines the one-hop amount on its first hop and the transit amount on every later one; netem
    cannot tell the hops apart and takes the one-hop amount off each."""
    links = {(w.a, w.b): w for w in state.wan}
    taken = 0.0
    for i, (u, v) in enumerate(zip(sites, sites[1:])):
        w = links.get((u, v)) or links[(v, u)]
        if i == 0 or state.mechanism == "netem":
            taken += w.comp_first_s
        else:
            taken += w.comp_transit_ab_s if u == w.a else w.comp_transit_ba_s
    return taken


def path_compensation(state: TwinState, sites: list[str]) -> tuple[Optional[float], float]:
    """(floor, compensation) of the round trip along ``sites`` (host time, s): the one-hop floor
    where the path is one link, and what the delay stages take off in both directions."""
    taken = direction_compensation(state, sites) + direction_compensation(state, sites[::-1])
    links = {(w.a, w.b): w for w in state.wan}
    floor = None
    if len(sites) == 2:
        w = links.get((sites[0], sites[1])) or links[(sites[1], sites[0])]
        floor = w.floor_rtt_s
    return floor, taken


def measurement_ports(state: TwinState) -> tuple[int, int]:
    """(probe UDP port, iperf3 TCP port): PROBE_PORT and IPERF_PORT, or the first port above
    each that no reservation of the running twin claims. On a reservation's port detpath would
    mark the probes and iperf3 as the reservation's, give them its path and its classes, and
    calibration would measure the reservation, not the path every flow sees."""
    reservations = running_reservations(state)
    return free_port(reservations, PROBE_PORT, "udp"), free_port(reservations, IPERF_PORT, "tcp")


def calibrate(state: TwinState, fabric: dict[str, tuple[float, float]], pings: int = 100,
              seconds: float = 5.0, max_pairs: int = 12,
              progress: Callable[[str], None] = lambda s: None,
              ceiling: Optional[Ceiling] = None) -> list[CalibrationRow]:
    """Every WAN link (the first worker of each end) and up to ``max_pairs`` cross-site worker
    pairs; ``ceiling``: the machine's, measured first when not given."""
    probe_port, iperf_port = measurement_ports(state)
    g = fabric_graph(asdict(w) for w in state.wan)
    first: dict[str, WorkerInfo] = {}
    for w in state.workers:
        first.setdefault(w.site, w)
    jobs: list[tuple[str, WorkerInfo, WorkerInfo]] = [
        ("wan-link", first[w.a], first[w.b]) for w in state.wan]
    cross = [(a, b) for i, a in enumerate(state.workers) for b in state.workers[i + 1:]
             if a.site != b.site]
    jobs += [("worker-pair", a, b) for a, b in cross[:max_pairs]]
    if not jobs:
        return []
    time_ = state.time
    if ceiling is None:
        progress("this machine's ceiling: one TCP flow and the probe through an unshaped scratch switch")
        ceiling = measure_ceiling(state.mtu, state.datapath,
                                  probe=(PROBE_PPS / time_.k, PROBE_COUNT))
    # the machine's ceiling in fabric time: under dilation K a host flow of C carries C x K, and
    # a host PDV of v is v / K
    fabric_ceiling = replace(ceiling, goodput_bps=time_.fabric_bps(ceiling.goodput_bps),
                             pdv_ms=None if ceiling.pdv_ms is None else time_.fabric_s(ceiling.pdv_ms))
    rows = []
    for kind, src, dst in jobs:
        progress(f"{kind} {src.name} -> {dst.name}")
        delay, rate, hops = path_properties(g, src.site, dst.site, fabric)
        rtts = [time_.fabric_s(r) for r in ping(src, dst.ip, pings, time_.host_s(PING_INTERVAL_S))]
        if not rtts:
            raise RuntimeError(f"no ping reply from {dst.name} ({dst.ip}) to {src.name}")
        fwd, rev = one_way(src, dst, time_, probe_port), one_way(dst, src, time_, probe_port)
        bps, retrans = iperf(src, dst, time_.host_s(seconds), port=iperf_port)
        row = calibration_row(kind, src.name, dst.name, hops, delay, rate, rtts, fwd, rev,
                              time_.fabric_bps(bps), retrans, fabric_ceiling, state.mechanism,
                              state.scale)
        sites = nx.dijkstra_path(g, src.site, dst.site, weight="delay")
        floor, taken = path_compensation(state, sites)
        row.floor_rtt_ms = None if floor is None else round(time_.fabric_s(floor) * 1e3, 3)
        row.compensation_rtt_ms = round(time_.fabric_s(taken) * 1e3, 3)
        row.dilation = time_.k
        rows.append(row)
    return rows


def write_csv(rows: list[CalibrationRow], path: Path) -> None:
    write_rows(rows, path)


def fabric_of(topo) -> dict[str, tuple[float, float]]:
    return {s.name: (s.fabric.delay, topo.emulated_rate(s.fabric.rate)) for s in topo.sites}


def within_targets(row: CalibrationRow) -> bool:
    """Every target measured on the path is met (a target not measured is neither)."""
    return all(s != MISSED for s in row.statuses())


def summary(rows: list[CalibrationRow]) -> Optional[str]:
    """'N/M paths within targets', counting measured targets only, and '(K not measured)' for
    the targets this machine could not test."""
    if not rows:
        return None
    ok = sum(within_targets(r) for r in rows)
    unmeasured = sum(s == NOT_MEASURED for r in rows for s in r.statuses())
    return f"{ok}/{len(rows)} paths within targets" + (
        f" ({unmeasured} not measured)" if unmeasured else "")
