"""Where a probe's one-way delay goes: tcpdump on every hop of the forwarding path between two
workers while ``traffic.probe`` packets flow, the same packet matched across hops by the probe's
sequence number, each hop's added delay split into what it is.

What each capture point sees, and on which clock. Every capture is a host ``tcpdump -j host
--time-stamp-precision=nano``: the kernel's software timestamp, CLOCK_REALTIME, in ns, the
clock the probe's sender writes into each packet (``time.time_ns()`` just before ``sendto``)
and the probe's receiver reads (SO_TIMESTAMPNS). One host, one clock: a difference between two
points is a delay, not a clock offset. (veths have no hardware clock: ``tcpdump -J`` offers
``host`` only.) A frame sent on an interface is stamped when it passes the capture tap on its
way to the driver, after the interface's qdisc (HTB, netem); a frame received is stamped when
it enters the receive backlog (before the softirq that hands it on). So:

- ``nic``: the probe's send time -> the sender's interface (out, in its namespace): the UDP/IP
  stack and the tc tree (HTB) on the worker's NIC.
- ``link``: the worker's interface -> its switch's port (in): the veth between them, and the
  site fabric's delay where the topology gives one.
- ``switch``: in on one OVS port -> out on another: the backlog, the userspace datapath's pass
  and the HTB queue on the out port.
- ``veth``: a switch's WAN port (out) -> the delay line's end (in).
- ``delay``: the delay line's two ends (in on one, out on the other): the link's propagation
  delay and the delay line's own lateness; its ``serialization`` (each frame's length at the
  link's emulated rate, which the delay line adds: see twin/emulation/delayline.c) is a row of
  its own, computed from the captured frame length. Where netem carries the delay it sits on
  the switch's WAN port egress, before the capture tap, so the switch pass and the delay are one
  hop there (``switch+delay``).
- ``receiver``: the switch's port towards the receiver (out) -> the receiver's interface (in,
  in its namespace), where the kernel stamps the arrival the probe's receiver reports.

The hops add up by construction for a packet seen everywhere (each hop starts where the last
ended); the check that means something is the sum against the one-way delay the probe measured
on its own (its sender's clock and its socket's timestamps).

Pure functions (the plan, reading a pcap, matching and statistics) come first; the code that
starts and stops tcpdump and the probe follows.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import networkx as nx

from traffic.probe import HEADER, MAGIC, percentile
from twin.emulation.runtime import find_wan
from twin.emulation.state import TwinState, WorkerInfo
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.processes import WORKLOAD_ENV, ns_prefix
from twin.plan.addressing import worker_intf_name
from twin.plan.graph import fabric_graph
from twin.plan.routing import primary_next_hops
from twin.units import udp_payload_bytes

SNAPLEN = 128  # Ethernet + IPv4 + UDP + the probe's header, with room for IP options
CAPTURE_BUFFER_KIB = 4096  # tcpdump -B: a burst of probes never fills it
READY_TIMEOUT_S = 10.0


# ---- the plan: which interfaces, in which order ------------------------------------------

@dataclass(frozen=True)
class CapturePoint:
    """One place a probe packet is seen: an interface, its direction, whose it is."""

    interface: str
    direction: str  # "out": transmitted (after its qdisc); "in": received
    node: str  # the worker, switch or delay line the interface belongs to
    pid: Optional[int] = None  # a process in the interface's network namespace; None: root


@dataclass(frozen=True)
class Hop:
    """The stretch between two capture points (``start`` None: from the probe's send time)."""

    kind: str  # nic, link, switch, veth, delay, switch+delay, receiver (see the module docstring)
    start: Optional[int]
    end: int
    node: str  # what the hop crosses: a worker, switch or delay line
    rate_bps: float = 0.0  # a delay stage's serialization rate; 0: the hop serializes nothing


@dataclass
class TracePlan:
    src: WorkerInfo
    dst: WorkerInfo
    sites: list[str]  # the forwarding path, site by site
    points: list[CapturePoint]
    hops: list[Hop]

    def interfaces(self, hop: Hop) -> str:
        """'A -> B' between the hop's capture points (just B from the probe's send time)."""
        end = self.points[hop.end].interface
        return end if hop.start is None else f"{self.points[hop.start].interface} -> {end}"


def forwarding_path(state: TwinState, src_site: str, dst_site: str) -> list[str]:
    """The sites a packet crosses from ``src_site`` to ``dst_site``, as the switches forward.

    Without a controller and with detpath, every switch forwards to the next hop of its own
    shortest one-way-delay path (routing.primary_next_hops, the table both install), so the
    path is walked next hop by next hop, not taken from the source's shortest path (they differ
    where delays tie). The baseline learning switch forwards on the minimum-delay spanning tree
    it floods on, whose path between two sites is unique. A failed-over or hand-changed flow
    table can forward otherwise: the captures show it (trace() refuses a path on which a capture
    point saw none of the probes that arrived).
    """
    g = fabric_graph(asdict(w) for w in state.wan)
    g.add_nodes_from(state.switches.values())
    if src_site == dst_site:
        return [src_site]
    if state.controller == "baseline":
        tree = nx.minimum_spanning_tree(g, weight="delay")
        try:
            return list(nx.shortest_path(tree, src_site, dst_site))
        except nx.NetworkXNoPath:
            raise TwinError(f"no path from {src_site} to {dst_site}") from None
    hops = primary_next_hops(g)
    path = [src_site]
    while path[-1] != dst_site:
        nxt = hops.get(path[-1], {}).get(dst_site)
        if nxt is None or nxt in path:
            raise TwinError(f"no path from {src_site} to {dst_site}")
        path.append(nxt)
    return path


def trace_plan(state: TwinState, src: WorkerInfo, dst: WorkerInfo) -> TracePlan:
    """Capture points along the forwarding path from ``src`` to ``dst`` and the hops between."""
    if src.name == dst.name:
        raise TwinError(f"source and destination are both {src.name}")
    sites = forwarding_path(state, src.site, dst.site)
    nic_src, nic_dst = worker_intf_name(src.site, src.index), worker_intf_name(dst.site, dst.index)
    points = [CapturePoint(nic_src, "out", src.name, src.pid),
              CapturePoint(src.port_intf, "in", src.switch)]
    hops = [Hop("nic", None, 0, src.name), Hop("link", 0, 1, src.name)]

    def add(point: CapturePoint, kind: str, node: str, rate_bps: float = 0.0) -> None:
        points.append(point)
        hops.append(Hop(kind, len(points) - 2, len(points) - 1, node, rate_bps))

    for u, v in zip(sites, sites[1:]):
        w = find_wan(state, u, v)
        forward = w.a == u
        sw_u, sw_v = (w.switch_a, w.switch_b) if forward else (w.switch_b, w.switch_a)
        out_port, in_port = (w.intf_a, w.intf_b) if forward else (w.intf_b, w.intf_a)
        if w.delayline:
            dl = w.delayline
            end_in, end_out = (dl.end_a, dl.end_b) if forward else (dl.end_b, dl.end_a)
            add(CapturePoint(out_port, "out", sw_u), "switch", sw_u)
            add(CapturePoint(end_in, "in", dl.name), "veth", dl.name)
            add(CapturePoint(end_out, "out", dl.name), "delay", dl.name, w.emulated_bps)
            add(CapturePoint(in_port, "in", sw_v), "veth", dl.name)
        elif w.delay_s > 0 or w.jitter_s > 0 or w.loss > 0:
            # netem on out_port's egress is before the capture tap: one hop with the switch pass
            add(CapturePoint(out_port, "out", sw_u), "switch+delay", sw_u, w.emulated_bps)
            add(CapturePoint(in_port, "in", sw_v), "veth", f"{u}-{v}")
        else:
            add(CapturePoint(out_port, "out", sw_u), "switch", sw_u)
            add(CapturePoint(in_port, "in", sw_v), "veth", f"{u}-{v}")
    add(CapturePoint(dst.port_intf, "out", dst.switch), "switch", dst.switch)
    add(CapturePoint(nic_dst, "in", dst.name, dst.pid), "receiver", dst.name)
    return TracePlan(src, dst, sites, points, hops)


# ---- reading and matching captures ----------------------------------------------------

@dataclass(frozen=True)
class Sighting:
    """One probe packet at one capture point."""

    seq: int
    ts_ns: int  # the capture's timestamp
    sent_ns: int  # the probe sender's timestamp, from the payload
    wire_bytes: int  # the frame's length on the wire (Ethernet header, no FCS)


@dataclass
class Sightings:
    """Every probe packet one capture saw, first copy of each sequence number, in capture order."""

    by_seq: dict[int, Sighting] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, s: Sighting) -> None:
        if s.seq in self.by_seq:
            self.duplicates += 1
        else:
            self.by_seq[s.seq] = s


def read_sightings(pcap: Path, port: int) -> Sightings:
    """The probe packets to UDP ``port`` in a pcap file (micro- or nanosecond timestamps).

    scapy reads the file and dissects each frame; the probe's header (sequence number, send
    time, magic) is the first bytes of the UDP payload, taken from the captured bytes as they
    are (``original``: a port scapy binds to a protocol would otherwise be re-encoded by it).
    """
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import RawPcapReader

    found = Sightings()
    with RawPcapReader(str(pcap)) as reader:
        scale = 1 if reader.nano else 1000
        for data, meta in reader:
            frame = Ether(data)
            if IP not in frame or UDP not in frame or frame[UDP].dport != port:
                continue
            payload = frame[UDP].original[8:]
            if len(payload) < HEADER.size:
                continue
            seq, sent_ns, magic = HEADER.unpack_from(payload)
            if magic != MAGIC:
                continue
            found.add(Sighting(seq, meta.sec * 1_000_000_000 + meta.usec * scale, sent_ns,
                               meta.wirelen))
    return found



def reordered(starts: dict[int, int], ends: dict[int, int]) -> int:
    """Packets that left a hop after one that entered it later (RFC 4737's reordered packets,
    counted over the hop): ``starts`` and ``ends`` map sequence numbers to times (ns)."""
    count, latest = 0, None
    for seq in sorted(ends, key=lambda q: (ends[q], starts[q])):
        if latest is not None and starts[seq] < latest:
            count += 1
        latest = starts[seq] if latest is None else max(latest, starts[seq])
    return count


@dataclass
class HopRow:
    """One row of the trace's CSV: a hop (or, with ``hop`` None, a sum or an end-to-end delay)."""

    src: str
    dst: str
    hop: Optional[int]
    kind: str
    node: str
    interfaces: str
    packets: int
    lost: int
    reordered: int
    median_ms: Optional[float]
    p99_ms: Optional[float]
    mean_ms: Optional[float]
    path: str
    controller: str
    mechanism: str
    scale: str


def stats_ms(values_ns: list[int] | list[float]) -> tuple[Optional[float], Optional[float],
                                                          Optional[float]]:
    """(median, p99, mean) in ms, nearest-rank percentiles as the probe reports them."""
    if not values_ns:
        return None, None, None
    ms = [v / 1e6 for v in values_ns]
    return (round(percentile(ms, 50), 4), round(percentile(ms, 99), 4),
            round(statistics.fmean(ms), 4))


@dataclass
class TraceResult:
    plan: TracePlan
    rows: list[HopRow]  # the hops, then the sum, the end-to-end delay and the probe's
    seen: list[int]  # probe packets each capture point saw
    sent: int
    probe: dict = field(default_factory=dict)  # the probe receiver's metrics
    dropped_by_kernel: list[int] = field(default_factory=list)  # per capture, tcpdump's count
    pcaps: list[str] = field(default_factory=list)

    def hops(self) -> list[HopRow]:
        return [r for r in self.rows if r.hop is not None]

    def total(self, kind: str) -> HopRow:
        return next(r for r in self.rows if r.hop is None and r.kind == kind)


def analyse(plan: TracePlan, sightings: list[Sightings], sent: int, probe: dict,
            context: dict[str, str]) -> TraceResult:
    """Per-hop delays of the probe packets, matched by sequence number across capture points.

    Each hop counts the packets seen at both of its ends (``lost``: seen at its start, not at
    its end; for the first hop, sent and not seen). A delay stage's hop is split into the
    delay and the serialization of each frame's captured length at the stage's rate. The sum
    rows: the hops' medians and means added up; ``end-to-end``: send time -> the last capture
    point, from the captures; ``probe``: the one-way delay the probe's receiver measured.
    ``context``: src, dst, path, controller, mechanism, scale for every row.
    """
    rows: list[HopRow] = []

    def row(kind: str, hop: Hop, values: list[int] | list[float], lost: int, late: int) -> None:
        median, p99, mean = stats_ms(values)
        rows.append(HopRow(hop=len(rows) + 1, kind=kind, node=hop.node,
                           interfaces=plan.interfaces(hop), packets=len(values), lost=lost,
                           reordered=late, median_ms=median, p99_ms=p99, mean_ms=mean,
                           **context))

    for hop in plan.hops:
        end = sightings[hop.end].by_seq
        if hop.start is None:
            starts = {seq: s.sent_ns for seq, s in end.items()}
            lost = max(0, sent - len(end))
        else:
            starts = {seq: s.ts_ns for seq, s in sightings[hop.start].by_seq.items()}
            lost = len(starts.keys() - end.keys())
        matched = [seq for seq in end if seq in starts]
        delays = [end[seq].ts_ns - starts[seq] for seq in matched]
        late = reordered(starts, {seq: end[seq].ts_ns for seq in matched})
        if hop.rate_bps > 0:
            serial = [end[seq].wire_bytes * 8e9 / hop.rate_bps for seq in matched]
            row(hop.kind, hop, [d - s for d, s in zip(delays, serial)], lost, late)
            row("serialization", hop, serial, lost, 0)
        else:
            row(hop.kind, hop, delays, lost, late)

    hop_rows = list(rows)
    first, last = plan.hops[0], plan.hops[-1]

    def summary(kind: str, node: str, interfaces: str, packets: int, lost: int, late: int,
                median: Optional[float], p99: Optional[float], mean: Optional[float]) -> None:
        rows.append(HopRow(hop=None, kind=kind, node=node, interfaces=interfaces, packets=packets,
                           lost=lost, reordered=late, median_ms=median, p99_ms=p99, mean_ms=mean,
                           **context))

    complete = set.intersection(*(set(s.by_seq) for s in sightings)) if sightings else set()
    summary("sum", "", "", len(complete), sum(r.lost for r in hop_rows), 0,
            _total(r.median_ms for r in hop_rows), None, _total(r.mean_ms for r in hop_rows))
    arrived = sightings[last.end].by_seq
    median, p99, mean = stats_ms([s.ts_ns - s.sent_ns for s in arrived.values()])
    summary("end-to-end", f"{plan.src.name}->{plan.dst.name}",
            f"{plan.points[first.end].interface} -> {plan.points[last.end].interface}",
            len(arrived), max(0, sent - len(arrived)),
            reordered({q: s.sent_ns for q, s in arrived.items()},
                      {q: s.ts_ns for q, s in arrived.items()}), median, p99, mean)
    delays = probe.get("delays_ms") or []
    summary("probe", f"{plan.src.name}->{plan.dst.name}", "traffic.probe",
            int(probe.get("received") or 0), max(0, sent - int(probe.get("received") or 0)),
            int(probe.get("reordered") or 0), _rounded(probe.get("owd_p50_ms")),
            _rounded(probe.get("owd_p99_ms")),
            round(statistics.fmean(delays), 4) if delays else None)
    return TraceResult(plan, rows, [len(s.by_seq) for s in sightings], sent, probe)


def _total(values: Iterator[Optional[float]]) -> Optional[float]:
    vals = list(values)
    return None if any(v is None for v in vals) else round(sum(v for v in vals if v is not None), 4)


def _rounded(v: object) -> Optional[float]:
    return None if v is None else round(float(v), 4)  # type: ignore[arg-type]


def unseen_points(result: TraceResult) -> list[CapturePoint]:
    """Capture points that saw none of the probes the receiver got: the packets went another
    way (a controller forwarding off the plan) or the point's capture failed."""
    if not result.probe.get("received"):
        return []
    return [p for p, n in zip(result.plan.points, result.seen) if n == 0]


# ---- capturing: tcpdump on every point while the probe runs -----------------------------

# The probes' UDP port, or the first above it that no reservation of the running twin claims
# (probe_port): a trace follows the best-effort path, which a reservation's port would leave.
DEFAULT_PORT = 7200


def probe_port(state: TwinState, src: WorkerInfo, dst: WorkerInfo, port: Optional[int]) -> int:
    """The UDP port the trace's probes use: ``port`` as given, refused if it is a port of a
    reservation between the two workers' sites (detpath would mark the probes as the
    reservation's and forward them on its path, in its classes, while the captures wait on the
    best-effort path); without one, the first from DEFAULT_PORT up in no reservation."""
    from twin.emulation.controller import running_reservations
    from twin.plan.reservations import free_port, reservation_on_port
    reservations = running_reservations(state)
    if port is None:
        return free_port(reservations, DEFAULT_PORT, "udp")
    r = reservation_on_port(reservations, src.site, dst.site, "udp", port)
    if r is not None:
        raise TwinError(f"--port {port}: a UDP port of reservation {r.name!r} ({r.src}-{r.dst}), "
                        "so detpath forwards the probes on that reservation's path in its "
                        "classes, not on the best-effort path the trace captures on; leave "
                        "--port out to have a port in no reservation chosen")
    return port


def tcpdump_argv(point: CapturePoint, pcap: Path, port: int) -> list[str]:
    """tcpdump writing one interface's probe packets in one direction, kernel timestamps in ns.

    ``-p``: no promiscuous mode (an OVS port keeps the flags OVS gave it); ``--immediate-mode``:
    each packet handed to tcpdump as it arrives (libpcap's TPACKET_V3 ring otherwise holds
    packets in a block until the block fills or its timeout ends, and stopping tcpdump loses
    the block: measured on ci-2site, up to 230 of the last probes at 500/s); ``-U``: each packet
    written as it comes, so an interrupted capture keeps what it saw; ``-Z root``: write the file
    as root (Debian's tcpdump otherwise drops to its own user before opening it).
    """
    return ["tcpdump", "-i", point.interface, "-Q", point.direction, "-p", "-n",
            "--immediate-mode", "-U",
            "-s", str(SNAPLEN), "-B", str(CAPTURE_BUFFER_KIB), "-j", "host",
            "--time-stamp-precision=nano", "-Z", "root", "-w", str(pcap),
            f"udp and dst port {port}"]


@dataclass
class Capture:
    point: CapturePoint
    pcap: Path
    proc: subprocess.Popen = field(repr=False)
    said: str = ""  # tcpdump's stderr
    dropped: int = 0  # packets the kernel dropped before tcpdump read them

    def stop(self) -> None:
        """SIGINT (tcpdump writes what it holds and its counts), SIGKILL if it lingers."""
        if self.proc.returncode is not None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.said += err.decode(errors="replace")
        m = re.search(r"(\d+) packets? dropped by kernel", self.said)
        self.dropped = int(m.group(1)) if m else 0


def start_capture(point: CapturePoint, pcap: Path, port: int) -> Capture:
    """tcpdump in the point's network namespace, marked TWIN_WORKLOAD=1 in its environment (by
    ns_prefix in a worker's namespace, here in the root one) so `twin clean` finds a capture
    whose twin process was killed before it could stop it."""
    proc = subprocess.Popen(ns_prefix(point.pid) + tcpdump_argv(point, pcap, port),
                            env={**os.environ, WORKLOAD_ENV: "1"}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return Capture(point, pcap, proc)


def wait_capturing(caps: list[Capture], timeout: float = READY_TIMEOUT_S) -> None:
    """Until every tcpdump says it is listening (its filter is on the socket: from then on it
    misses nothing), instead of a fixed sleep that a loaded machine can outlast."""
    deadline = time.monotonic() + timeout
    for c in caps:
        assert c.proc.stderr is not None
        fd = c.proc.stderr.fileno()
        while "listening on" not in c.said:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TwinError(f"tcpdump on {c.point.interface} not capturing after "
                                f"{timeout:.0f} s: {c.said.strip() or 'no output'}")
            if select.select([fd], [], [], min(left, 0.2))[0]:
                chunk = os.read(fd, 4096)
                c.said += chunk.decode(errors="replace")
                if chunk:
                    continue
            if c.proc.poll() is not None:
                raise TwinError(f"tcpdump on {c.point.interface} exited: "
                                f"{c.said.strip()[-200:] or 'no output'}")


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGHUP while the block starts processes takes effect as
    KeyboardInterrupt when the block ends, once every process it started has a handle to stop it
    by. Interrupted half-way, a start would leave a process nobody stops (the probe's sender,
    started in its container while its handle is being made, would send to the end of its run).
    Outside the main thread (where Python runs signal handlers) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: got.append(signum))
           for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if got:
        raise KeyboardInterrupt(f"signal {got[0]}")


@contextlib.contextmanager
def capturing(points: list[CapturePoint], folder: Path, port: int) -> Iterator[list[Capture]]:
    """A capture on every point, ready on entry; every tcpdump stopped on exit, whatever ends
    the block (an error, Ctrl-C, SIGTERM turned into KeyboardInterrupt by the caller)."""
    caps: list[Capture] = []
    try:
        with interrupts_deferred():
            for i, p in enumerate(points):
                caps.append(start_capture(
                    p, folder / f"{i:02d}-{p.interface}-{p.direction}.pcap", port))
        wait_capturing(caps)
        yield caps
    finally:
        for c in caps:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGINT)  # all at once, then collect each
        for c in caps:
            c.stop()


@contextlib.contextmanager
def pcap_folder(keep: Optional[str]) -> Iterator[Path]:
    """``keep``, created if missing; else a scratch folder in rundirs.traces_dir(), removed after
    (and by `twin clean`, where a killed trace could not remove it)."""
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
        return
    parent = rundirs.traces_dir()
    parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trace-", dir=parent) as scratch:
        yield Path(scratch)


def check_probe_size(size: Optional[int], mtu: int) -> None:
    """A probe carries its header and fits one frame (a fragment would carry no sequence number)."""
    largest = udp_payload_bytes(mtu)
    if size is not None and not HEADER.size <= size <= largest:
        raise TwinError(f"--size {size}: a probe is {HEADER.size} to {largest} bytes of UDP "
                        f"payload at MTU {mtu}")


def trace(state: TwinState, src: WorkerInfo, dst: WorkerInfo, seconds: float = 5.0,
          pps: float = 1000.0, dscp: int = 0, port: Optional[int] = None,
          size: Optional[int] = None, pcaps: Optional[str] = None,
          progress: Callable[[str], None] = lambda s: None) -> TraceResult:
    """Capture on every point of the path from ``src`` to ``dst`` while ``seconds`` x ``pps``
    probes flow, then match them across the captures (see analyse). ``size``: the probes' UDP
    payload in bytes (default the probe's, 200), one unfragmented datagram at the twin's MTU;
    ``port``: their UDP port (see probe_port)."""
    from twin.drive.crosstraffic import Probe, start_probe
    from twin.drive.workerexec import stop
    check_probe_size(size, state.mtu)
    port = probe_port(state, src, dst, port)
    plan = trace_plan(state, src, dst)
    count = max(1, round(seconds * pps))
    with pcap_folder(pcaps) as folder:
        progress(f"capturing on {len(plan.points)} interfaces along "
                 f"{' > '.join(plan.sites)}")
        with capturing(plan.points, folder, port) as caps:
            progress(f"{count} probes {src.name} -> {dst.name} at {pps:g}/s, DSCP {dscp}, "
                     f"UDP port {port}")
            started: list[Probe] = []
            try:
                with interrupts_deferred():
                    started.append(start_probe(src, dst, port, pps, count, dscp, size))
                metrics = started[0].result(timeout=seconds + 30)  # stops both, whatever happens
            except BaseException:
                for probe in started:  # interrupted before result() took over
                    stop([p for p in (probe.sender, probe.receiver) if p])
                raise
        progress("reading the captures")
        sightings = [read_sightings(c.pcap, port) for c in caps]
    context = {"src": src.name, "dst": dst.name, "path": ">".join(plan.sites),
               "controller": state.controller, "mechanism": state.mechanism,
               "scale": state.scale}
    result = analyse(plan, sightings, count, metrics, context)
    result.dropped_by_kernel = [c.dropped for c in caps]
    result.pcaps = [str(c.pcap) for c in caps] if pcaps else []
    missing = unseen_points(result)
    if missing:
        raise TwinError(
            f"none of the {metrics.get('received')} probes that arrived passed "
            + ", ".join(f"{p.interface} ({p.direction}, {p.node})" for p in missing)
            + f": the switches forward {src.name} -> {dst.name} another way than "
            f"{' > '.join(plan.sites)} (see 'ovs-ofctl dump-flows')")
    return result
