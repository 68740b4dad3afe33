"""Calibration: configured vs measured for every WAN link and cross-site worker pair.

Independent tools only (ping for RTT, iperf3 for TCP throughput, ping's per-packet RTTs for
delay variation), run from the host inside the workers' network namespaces, so a bug in the
twin's own traffic code cannot hide a bug in its links.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import networkx as nx

from traffic.probe import percentile
from twin.emulation.state import TwinState, WorkerInfo
from twin.measure.iperf import iperf
from twin.measure.ping import ping
from twin.output.csvrows import write_rows
from twin.plan.graph import fabric_graph
from twin.units import tcp_payload_share


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
    pdv_ms: float  # p99 - min of RTT samples
    pdv_ok: bool
    emulated_rate_mbps: float
    goodput_mbps: float
    goodput_ratio: float
    wire_ratio: float  # goodput scaled to Ethernet frames, comparable with the line rate
    throughput_ok: bool
    retransmits: int
    mechanism: str
    scale: str


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


def calibrate(state: TwinState, fabric: dict[str, tuple[float, float]], pings: int = 100,
              seconds: float = 5.0, max_pairs: int = 12,
              progress: Callable[[str], None] = lambda s: None) -> list[CalibrationRow]:
    g = fabric_graph(asdict(w) for w in state.wan)
    first: dict[str, WorkerInfo] = {}
    for w in state.workers:
        first.setdefault(w.site, w)
    jobs: list[tuple[str, WorkerInfo, WorkerInfo]] = [
        ("wan-link", first[w.a], first[w.b]) for w in state.wan]
    cross = [(a, b) for i, a in enumerate(state.workers) for b in state.workers[i + 1:]
             if a.site != b.site]
    jobs += [("worker-pair", a, b) for a, b in cross[:max_pairs]]
    rows = []
    for kind, src, dst in jobs:
        progress(f"{kind} {src.name} -> {dst.name}")
        delay, rate, hops = path_properties(g, src.site, dst.site, fabric)
        rtts = ping(src, dst.ip, pings)
        if not rtts:
            raise RuntimeError(f"no ping reply from {dst.name} ({dst.ip}) to {src.name}")
        bps, retrans = iperf(src, dst, seconds)
        cfg_rtt = 2 * delay * 1e3
        rtt_min, rtt_med = min(rtts), statistics.median(rtts)
        err = rtt_med - cfg_rtt
        pdv = percentile(rtts, 99) - rtt_min
        ratio = bps / rate
        rows.append(CalibrationRow(
            kind=kind, src=src.name, dst=dst.name, hops=hops, configured_rtt_ms=round(cfg_rtt, 3),
            measured_rtt_min_ms=round(rtt_min, 3), measured_rtt_median_ms=round(rtt_med, 3),
            rtt_error_ms=round(err, 3), rtt_ok=abs(err) <= max(0.02 * cfg_rtt, 0.2),
            pdv_ms=round(pdv, 3), pdv_ok=pdv <= 0.5, emulated_rate_mbps=round(rate / 1e6, 3),
            goodput_mbps=round(bps / 1e6, 2), goodput_ratio=round(ratio, 4),
            wire_ratio=round(ratio / tcp_payload_share(state.mtu), 4),
            throughput_ok=ratio / tcp_payload_share(state.mtu) >= 0.95 if rate <= 500e6 else True,
            retransmits=retrans, mechanism=state.mechanism, scale=state.scale))
    return rows


def write_csv(rows: list[CalibrationRow], path: Path) -> None:
    write_rows(rows, path)


def fabric_of(topo) -> dict[str, tuple[float, float]]:
    return {s.name: (s.fabric.delay, topo.emulated_rate(s.fabric.rate)) for s in topo.sites}


def summary(rows: list[CalibrationRow]) -> Optional[str]:
    if not rows:
        return None
    ok = sum(r.rtt_ok and r.pdv_ok and r.throughput_ok for r in rows)
    return f"{ok}/{len(rows)} paths within targets"
