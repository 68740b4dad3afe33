"""Topology files: the declarative description of a fabric, validated before anything starts.

A file lists sites (cities with coordinates and GPU-worker stand-ins) and the long-haul links
between them. Real-world units stay in the file (``400Gbit``, ``9.8ms``); the ``scale`` section
says how real rates map to what this machine can emulate, and every report prints it. Delays are
never scaled: propagation is the physics the twin exists to reproduce.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Optional

import networkx as nx
from pydantic import Field, ValidationError, field_validator

from twin.errors import InputError
from twin.plan.addressing import worker_intf_name
from twin.plan.dilation import Dilation
from twin.plan.graph import fabric_graph
from twin.spec.loading import (
    Document,
    FileModel,
    Loc,
    at_most,
    field_path,
    read_document,
    validate,
)
from twin.units import (
    format_rate,
    parse_fraction,
    parse_rate,
    parse_size,
    parse_time,
    tcp_payload_share,
)

FIBER_US_PER_KM = 4.9  # group index ~1.468 (REFERENCE.md)
EARTH_RADIUS_KM = 6371.0
IFNAMSIZ = 15  # Linux interface names: 15 characters + NUL
NAME_RE = re.compile(r"^[a-z][a-z0-9]*$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # names that end up in file names
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$")

# Limits of a topology file (docs/topology.md, "Limits of input files", gives each reason).
MAX_NAME_CHARS = 100  # a topology's name goes into file names (calibration-NAME-RUN.csv)
MAX_SITES = 255  # site i's workers are 10.i.0.k and MAC 02:00:00:00:ii:kk: one byte
MAX_WORKERS_PER_SITE = 64  # one leaf switch per site, one port per worker
MAX_WORKERS = 1024  # a container each: ~9 MB and ~0.4 s of bring-up here (docs/benchmarks.md)
MAX_LINKS = 1024  # each a veth pair, two switch ports and, without netem, a delay-line process
MAX_RESERVATIONS = 64  # each a set of flows on every switch of its path and its backup
MAX_PORTS = 64  # per port list of a reservation: each port is a flow match on every switch
MAX_DELAY_S = 1.0  # one way: 40,000 km of fiber is 0.2 s, a geostationary satellite hop 0.27 s
MAX_DISTANCE_KM = 40000.0  # once round the Earth: no fiber route between two points is longer
MIN_CPUS = 0.01  # Docker's smallest CPU limit
MAX_CPUS = 1024.0
MIN_MEMORY_BYTES = 6 * 1024**2  # Docker's smallest memory limit
MAX_MEMORY_BYTES = 1024**4  # 1 TiB, per worker
MIN_QUEUE_BYTES = 3000  # two full-size frames of MTU 1500; two of the topology's MTU in any case
MAX_QUEUE_BYTES = 1024**3  # tc's byte FIFO takes a 32-bit limit; 1 GiB is 8.6 s at 1 Gbit/s
# The smallest emulated rate (real rate x scale) of any link, NIC or reservation: a 9000-byte
# frame then takes 0.72 s on the wire; slower, TCP's retransmission timer (200 ms minimum) and
# the probes' timeouts fire on a healthy link, and HTB's rate arithmetic loses its precision.
MIN_EMULATED_RATE_BPS = 100e3


def _delay(v: Any) -> float:
    t = parse_time(v)
    if t > MAX_DELAY_S:
        raise ValueError(f"{v!r} is longer than {MAX_DELAY_S:g} s, more than any fiber on Earth "
                         f"delays (40,000 km is 0.2 s)")
    return t


def file_name(v: str) -> str:
    """A name that goes into file names (a topology's, a campaign's): no path, no spaces."""
    if not FILE_NAME_RE.match(v):
        raise ValueError(f"{v!r}: use letters, digits, '.', '_' and '-' (it names a file)")
    return v


def image_ref(v: Optional[str]) -> Optional[str]:
    if v is not None and not IMAGE_RE.match(v):
        raise ValueError(f"{v!r} is not a valid image reference")
    return v


def bandwidth_ratio(v: Any) -> float:
    """How real rates map to emulated ones: a number in (0, 1] or a fraction such as '1/4000'."""
    try:
        if isinstance(v, str) and "/" in v:
            num, den = v.split("/", 1)
            v = float(num) / float(den)
        if isinstance(v, bool):
            raise TypeError
        v = float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"{v!r} is not a ratio; use e.g. 0.001 or '1/1000'") from None
    if not 0 < v <= 1:
        raise ValueError("must be in (0, 1], e.g. 0.001 or '1/1000'")
    return v


def dilation_factor(v: Any) -> float:
    """Time dilation K: a number in [1, MAX_DILATION] (1: real time)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{v!r} is not a dilation factor; use e.g. 4 (the fabric runs 4x slower)")
    Dilation(float(v))  # ValueError names the range
    return float(v)


class Scale(FileModel):
    """Maps real rates and message sizes to what this machine emulates, and (``time``) how much
    slower than real the host plays the fabric (twin.plan.dilation)."""

    bandwidth: float = Field(default=1e-3, description="emulated rate = real rate x bandwidth (e.g. 0.001)")
    time: float = Field(default=1.0, description=(
        "time dilation K: the host plays every delay x K and every rate / K, and reports every "
        "time divided by K, so a fabric too big for this machine in real time can run slower"))

    _b = field_validator("bandwidth", mode="before")(classmethod(lambda cls, v: bandwidth_ratio(v)))
    _t = field_validator("time", mode="before")(classmethod(lambda cls, v: dilation_factor(v)))

    @property
    def dilation(self) -> Dilation:
        return Dilation(self.time)

    def describe(self) -> str:
        text = f"bandwidth x{self.bandwidth:g} (1/{1 / self.bandwidth:g}); delays real"
        return text if self.time == 1 else f"{text}; {self.dilation.describe()}"


class SiteFabric(FileModel):
    """The intra-site network: each worker's link to its site's leaf switch."""

    rate: float = Field(default=parse_rate("400Gbit"), description="worker NIC rate (real units)")
    delay: float = Field(default=0.0, description="one-way delay worker <-> leaf")

    _r = field_validator("rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))
    _d = field_validator("delay", mode="before")(classmethod(lambda cls, v: _delay(v)))


class Site(FileModel):
    name: str = Field(description="short id: lowercase letters and digits, used in interface names")
    city: Optional[str] = Field(None, description="display name")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    workers: int = Field(1, ge=1, le=MAX_WORKERS_PER_SITE)
    image: Optional[str] = None
    cpus: Optional[float] = Field(None, ge=MIN_CPUS, le=MAX_CPUS,
                                  description="CPU limit per worker (cores)")
    memory: Optional[int] = Field(None, description="memory limit per worker (bytes, e.g. 512M)")
    fabric: SiteFabric = SiteFabric()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"{v!r} must start with a letter and use only a-z and 0-9")
        return v

    _i = field_validator("image")(classmethod(lambda cls, v: image_ref(v)))

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Optional[int]:
        if v is None:
            return None
        size = parse_size(v)
        if size < MIN_MEMORY_BYTES:
            raise ValueError("must be at least 6M (Docker's minimum)")
        if size > MAX_MEMORY_BYTES:
            raise ValueError("must be at most 1T (1 TiB) per worker")
        return size


class WanLink(FileModel):
    a: str
    b: str
    rate: float = Field(description="real line rate, e.g. 400Gbit")
    distance_km: Optional[float] = Field(None, gt=0, le=MAX_DISTANCE_KM)
    route_factor: Optional[float] = Field(None, ge=1.0, le=3.0)
    delay: Optional[float] = Field(
        None, description=f"one-way; default from distance at {FIBER_US_PER_KM} us/km")
    jitter: float = 0.0
    loss: float = Field(0.0, ge=0.0, lt=1.0)
    queue: Optional[int] = Field(None, description="bottleneck queue in bytes; default one BDP")

    _r = field_validator("rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))
    _t = field_validator("delay", "jitter", mode="before")(
        classmethod(lambda cls, v: None if v is None else _delay(v)))
    _l = field_validator("loss", mode="before")(classmethod(lambda cls, v: parse_fraction(v)))

    @field_validator("queue", mode="before")
    @classmethod
    def _queue(cls, v: Any) -> Optional[int]:
        if v is None:
            return None
        size = parse_size(v)
        if size < MIN_QUEUE_BYTES:
            raise ValueError("must hold at least two full-size frames (3000 bytes)")
        if size > MAX_QUEUE_BYTES:
            raise ValueError("must be at most 1G (1 GiB), 8.6 s of traffic at 1 Gbit/s")
        return size


class ReservationSpec(FileModel):
    """A deterministic-service reservation for the detpath controller (real units)."""

    name: str
    a: str
    b: str
    rate: float
    dscp: int = Field(34, ge=0, le=63, description="the job's bulk traffic (AF41)")
    probe_dscp: int = Field(46, ge=0, le=63, description="probes (EF): a strict, short queue")
    tcp_ports: list[int] = Field(default_factory=lambda: [29500, 29600], max_length=MAX_PORTS,
                                 description="the job's collective traffic (traffic.bench/train)")
    udp_ports: list[int] = Field(default_factory=lambda: [7100], max_length=MAX_PORTS,
                                 description="probes")
    replicated_udp_ports: list[int] = Field(
        default_factory=list, max_length=MAX_PORTS,
        description="probes sent 1+1: on the primary and the edge-disjoint backup path at once, "
                    "the receiver keeping the first copy")

    _r = field_validator("rate", mode="before")(classmethod(lambda cls, v: parse_rate(v)))

    _n = field_validator("tcp_ports", "udp_ports", "replicated_udp_ports", mode="before")(
        classmethod(lambda cls, v: at_most(v, MAX_PORTS, "ports",
                                           "each is a flow match on every switch of the path")))

    @field_validator("tcp_ports", "udp_ports", "replicated_udp_ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        if any(not 0 < p < 65536 for p in v):
            raise ValueError("ports must be in 1..65535")
        return v


class Topology(FileModel):
    name: str = Field(max_length=MAX_NAME_CHARS,
                      description="letters, digits, '.', '_' and '-': it names result files")
    description: str = ""
    route_factor: float = Field(1.3, ge=1.0, le=3.0, description="fiber route / great circle")
    image: Optional[str] = Field(None, description="worker image; default the project's own")
    scale: Scale = Scale()
    mtu: int = Field(9000, ge=1280, le=9216, description=(
        "IP MTU of every twin interface. AI fabrics run jumbo frames; it also matters for the "
        "emulation: every frame costs CPU in the userspace switch and delay line, so 9000 carries "
        "6x the bytes of 1500 for the same work (a ring all-reduce on 2 cores went from 77% to 97% "
        "of the link rate). Use 1500 to study standard frames."))
    sites: list[Site] = Field(min_length=1, max_length=MAX_SITES)
    links: list[WanLink] = Field(default_factory=list, max_length=MAX_LINKS)
    reservations: list[ReservationSpec] = Field(default_factory=list, max_length=MAX_RESERVATIONS)
    delay_compensation: bool = Field(True, description=(
        "measure the host's own latency floor at bring-up and take it out of the long-haul delay "
        "stages, so that a worker measures the configured fiber delay, not the emulator's "
        "(docs/emulation.md#delay-compensation); false leaves the floor in every delay"))
    congestion_control: str = Field("cubic", pattern=r"^[a-z][a-z0-9_]{0,15}$", description=(
        "TCP congestion control of every worker (Linux's default, what a stock VM runs); set "
        "explicitly because a machine's own default (bbr on some) would otherwise leak into "
        "every result"))

    _i = field_validator("image")(classmethod(lambda cls, v: image_ref(v)))

    _ns = field_validator("sites", mode="before")(classmethod(lambda cls, v: at_most(
        v, MAX_SITES, "sites", "site i's workers are 10.i.0.k: i is one byte")))
    _nl = field_validator("links", mode="before")(classmethod(lambda cls, v: at_most(
        v, MAX_LINKS, "links", "each is two switch ports and a delay line")))
    _nr = field_validator("reservations", mode="before")(classmethod(lambda cls, v: at_most(
        v, MAX_RESERVATIONS, "reservations", "each is flows on every switch of two paths")))

    _fn = field_validator("name")(classmethod(lambda cls, v: file_name(v)))

    # ---- derived quantities -------------------------------------------------
    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def link_distance_km(self, link: WanLink) -> float:
        if link.distance_km is not None:
            return link.distance_km
        a, b = self.site(link.a), self.site(link.b)
        factor = link.route_factor or self.route_factor
        return great_circle_km(a.lat, a.lon, b.lat, b.lon) * factor

    def link_delay(self, link: WanLink) -> float:
        """One-way propagation delay in seconds (given, or from fiber distance)."""
        if link.delay is not None:
            return link.delay
        return self.link_distance_km(link) * FIBER_US_PER_KM * 1e-6

    def emulated_rate(self, real_bps: float) -> float:
        return real_bps * self.scale.bandwidth

    def link_queue_bytes(self, link: WanLink) -> int:
        """Queue at the link's egress: one bandwidth-delay product of the emulated link."""
        if link.queue is not None:
            return link.queue
        rtt = 2 * self.link_delay(link)
        bdp = self.emulated_rate(link.rate) * max(rtt, 1e-3) / 8
        return max(int(bdp), 64 * (self.mtu + 14))

    def tcp_payload_share(self) -> float:
        return tcp_payload_share(self.mtu)

    def workers(self) -> list[tuple[Site, int]]:
        return [(s, k) for s in self.sites for k in range(1, s.workers + 1)]

    def graph(self) -> nx.Graph:
        """The fabric graph of the model (twin.plan.graph): every site, every link with its
        one-way delay and emulated rate."""
        return fabric_graph(({"a": link.a, "b": link.b, "delay_s": self.link_delay(link),
                              "emulated_bps": self.emulated_rate(link.rate)} for link in self.links),
                            sites=[s.name for s in self.sites])

    def with_scale(self, bandwidth: str) -> "Topology":
        """This topology at another bandwidth scale (``--scale 1/4000``): the same sites, links
        and delays, emulated at ``bandwidth`` of the real rates. ValueError says why a ratio is
        refused."""
        try:
            scale = Scale.model_validate({"bandwidth": bandwidth, "time": self.scale.time})
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, ")
                                       for e in exc.errors())) from None
        scaled = self.model_copy(update={"scale": scale})
        problems = emulated_rate_problems(scaled)
        if problems:
            data = scaled.model_dump()
            raise ValueError("; ".join(f"{field_path(loc, data)}: {reason}"
                                       for loc, reason in problems))
        return scaled

    def with_dilation(self, k: float) -> "Topology":
        """This topology played ``k`` times slower than real (``--dilation K``); ValueError says
        why a factor is refused."""
        return self.model_copy(update={"scale": self.scale.model_copy(
            update={"time": dilation_factor(k)})})

    def span_km(self) -> float:
        """Largest great-circle distance between any two sites."""
        return max((great_circle_km(a.lat, a.lon, b.lat, b.lon)
                    for a in self.sites for b in self.sites), default=0.0)


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a spherical Earth."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


# ---- loading and validation -------------------------------------------------

def emulated_rate_problems(topo: Topology) -> list[tuple[Loc, str]]:
    """Every rate (worker NICs, links, reservations) that the topology's scale makes slower than
    MIN_EMULATED_RATE_BPS; checked again whenever the scale changes (``--scale``, campaigns)."""
    floor = MIN_EMULATED_RATE_BPS
    rates: list[tuple[Loc, float]] = [(("sites", i, "fabric", "rate"), s.fabric.rate)
                                      for i, s in enumerate(topo.sites)]
    rates += [(("links", i, "rate"), link.rate) for i, link in enumerate(topo.links)]
    rates += [(("reservations", i, "rate"), r.rate) for i, r in enumerate(topo.reservations)]
    return [(loc, f"{format_rate(rate)} at scale {topo.scale.bandwidth:g} is "
                  f"{format_rate(topo.emulated_rate(rate))} emulated; the twin needs at least "
                  f"{format_rate(floor)} (a 9000-byte frame then takes 0.72 s)")
            for loc, rate in rates if topo.emulated_rate(rate) < floor]


def _semantic_problems(topo: Topology) -> list[tuple[Loc, str]]:
    """Checks that span fields: references, duplicates, connectivity, name lengths, the number
    of workers, rates at the topology's scale."""
    problems: list[tuple[Loc, str]] = []
    workers = sum(s.workers for s in topo.sites)
    if workers > MAX_WORKERS:
        problems.append((("sites",), f"{workers} workers in all; at most {MAX_WORKERS} (each is a "
                                     f"container; for larger fabrics use 'twin model')"))
    problems += emulated_rate_problems(topo)
    seen: set[str] = set()
    for i, s in enumerate(topo.sites):
        if s.name in seen:
            problems.append((("sites", i, "name"), f"duplicate site name {s.name!r}"))
        seen.add(s.name)
    for i, s in enumerate(topo.sites):
        longest = worker_intf_name(s.name, s.workers)
        if len(longest) > IFNAMSIZ:
            room = IFNAMSIZ - len(f"{s.workers}-eth0")
            problems.append((("sites", i, "name"),
                             f"interface {longest!r} would exceed Linux's {IFNAMSIZ} characters; "
                             f"use a name of at most {room} characters"))
    pairs: set[frozenset] = set()
    for i, link in enumerate(topo.links):
        for end in ("a", "b"):
            if getattr(link, end) not in seen:
                problems.append((("links", i, end), f"unknown site {getattr(link, end)!r}"))
        if link.a == link.b:
            problems.append((("links", i, "b"), "a link must join two different sites"))
        pair = frozenset((link.a, link.b))
        if pair in pairs and link.a != link.b:
            problems.append((("links", i), f"duplicate link between {link.a} and {link.b}"))
        pairs.add(pair)
        frames = 2 * (topo.mtu + 14)
        if link.queue is not None and link.queue < frames:
            problems.append((("links", i, "queue"), f"{link.queue} bytes hold fewer than two "
                                                    f"full-size frames of MTU {topo.mtu} "
                                                    f"({frames} bytes)"))
        if {link.a, link.b} <= seen and link.jitter > topo.link_delay(link):
            problems.append((("links", i, "jitter"), "larger than the link's delay; packets "
                                                     "cannot arrive before they leave"))
    for i, r in enumerate(topo.reservations):
        for end in ("a", "b"):
            if getattr(r, end) not in seen:
                problems.append((("reservations", i, end), f"unknown site {getattr(r, end)!r}"))
        both = sorted(set(r.udp_ports) & set(r.replicated_udp_ports))
        if both:
            problems.append((("reservations", i, "replicated_udp_ports"),
                             f"{both} also in udp_ports; a port is either protected by failover "
                             f"or sent 1+1"))
    if problems:
        return problems
    g = topo.graph()
    if len(topo.sites) > 1 and not nx.is_connected(g):
        parts = sorted((sorted(c) for c in nx.connected_components(g)), key=len)
        problems.append((("links",), f"sites are disconnected; {', '.join(parts[0])} cannot "
                                     f"reach the others"))
    return problems


def topology_of(doc: Document) -> Topology:
    """The document as a topology: its fields, then what spans them; one line per problem."""
    topo = validate(Topology, doc)
    problems = _semantic_problems(topo)
    if problems:
        raise InputError([doc.problem(loc, reason) for loc, reason in problems])
    return topo


def parse_topology(data: Any, source: str = "<topology>") -> Topology:
    """Validate an already parsed document (no line numbers: there is no text)."""
    return topology_of(Document(source, data))


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file."""
    return topology_of(read_document(path))


def single_site(topo: Topology) -> Topology:
    """The equal-compute single-site twin: same workers and fabric, one site, no WAN.

    Efficiency claims compare iteration time on one site with the same GPU count spread
    over sites; this derives that reference from any topology.
    """
    total = sum(s.workers for s in topo.sites)
    first = topo.sites[0]
    site = first.model_copy(update={"name": "single", "city": "single site", "workers": total})
    return topo.model_copy(update={"name": f"{topo.name}-single", "sites": [site], "links": [],
                                   "reservations": [],
                                   "description": f"equal-compute single site of {topo.name}"})


def json_schema() -> str:
    return json.dumps(Topology.model_json_schema(), indent=2)
