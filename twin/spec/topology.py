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
from twin.spec.loading import Document, FileModel, Loc, read_document, validate
from twin.units import (
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
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$")


def _rate(v: Any) -> float:
    r = parse_rate(v)
    if r <= 0:
        raise ValueError("must be greater than zero")
    return r


def _time(v: Any) -> float:
    t = parse_time(v)
    if t < 0:
        raise ValueError("must not be negative")
    return t


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

    _r = field_validator("rate", mode="before")(classmethod(lambda cls, v: _rate(v)))
    _d = field_validator("delay", mode="before")(classmethod(lambda cls, v: _time(v)))


class Site(FileModel):
    name: str = Field(description="short id: lowercase letters and digits, used in interface names")
    city: Optional[str] = Field(None, description="display name")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    workers: int = Field(1, ge=1, le=64)
    image: Optional[str] = None
    cpus: Optional[float] = Field(None, gt=0, description="CPU limit per worker (cores)")
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
        if size < 6 * 1024**2:
            raise ValueError("must be at least 6M (Docker's minimum)")
        return size


class WanLink(FileModel):
    a: str
    b: str
    rate: float = Field(description="real line rate, e.g. 400Gbit")
    distance_km: Optional[float] = Field(None, gt=0)
    route_factor: Optional[float] = Field(None, ge=1.0, le=3.0)
    delay: Optional[float] = Field(
        None, description=f"one-way; default from distance at {FIBER_US_PER_KM} us/km")
    jitter: float = 0.0
    loss: float = Field(0.0, ge=0.0, lt=1.0)
    queue: Optional[int] = Field(None, description="bottleneck queue in bytes; default one BDP")

    _r = field_validator("rate", mode="before")(classmethod(lambda cls, v: _rate(v)))
    _t = field_validator("delay", "jitter", mode="before")(
        classmethod(lambda cls, v: None if v is None else _time(v)))
    _l = field_validator("loss", mode="before")(classmethod(lambda cls, v: parse_fraction(v)))

    @field_validator("queue", mode="before")
    @classmethod
    def _queue(cls, v: Any) -> Optional[int]:
        if v is None:
            return None
        size = parse_size(v)
        if size < 3000:
            raise ValueError("must hold at least two full-size frames (3000 bytes)")
        return size


class ReservationSpec(FileModel):
    """A deterministic-service reservation for the detpath controller (real units)."""

    name: str
    a: str
    b: str
    rate: float
    dscp: int = Field(34, ge=0, le=63, description="the job's bulk traffic (AF41)")
    probe_dscp: int = Field(46, ge=0, le=63, description="probes (EF): a strict, short queue")
    tcp_ports: list[int] = Field(default_factory=lambda: [29500, 29600],
                                 description="the job's collective traffic (traffic.bench/train)")
    udp_ports: list[int] = Field(default_factory=lambda: [7100], description="probes")
    replicated_udp_ports: list[int] = Field(
        default_factory=list,
        description="probes sent 1+1: on the primary and the edge-disjoint backup path at once, "
                    "the receiver keeping the first copy")

    _r = field_validator("rate", mode="before")(classmethod(lambda cls, v: _rate(v)))

    @field_validator("tcp_ports", "udp_ports", "replicated_udp_ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        if any(not 0 < p < 65536 for p in v):
            raise ValueError("ports must be in 1..65535")
        return v


class Topology(FileModel):
    name: str
    description: str = ""
    route_factor: float = Field(1.3, ge=1.0, le=3.0, description="fiber route / great circle")
    image: Optional[str] = Field(None, description="worker image; default the project's own")
    scale: Scale = Scale()
    mtu: int = Field(9000, ge=1280, le=9216, description=(
        "IP MTU of every twin interface. AI fabrics run jumbo frames; it also matters for the "
        "emulation: every frame costs CPU in the userspace switch and delay line, so 9000 carries "
        "6x the bytes of 1500 for the same work (a ring all-reduce on 2 cores went from 77% to 97% "
        "of the link rate). Use 1500 to study standard frames."))
    sites: list[Site] = Field(min_length=1)
    links: list[WanLink] = Field(default_factory=list)
    reservations: list[ReservationSpec] = Field(default_factory=list)
    congestion_control: str = Field("cubic", pattern=r"^[a-z][a-z0-9_]{0,15}$", description=(
        "TCP congestion control of every worker (Linux's default, what a stock VM runs); set "
        "explicitly because a machine's own default (bbr on some) would otherwise leak into "
        "every result"))

    _i = field_validator("image")(classmethod(lambda cls, v: image_ref(v)))

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
        return self.model_copy(update={"scale": scale})

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

def _semantic_problems(topo: Topology) -> list[tuple[Loc, str]]:
    """Checks that span fields: references, duplicates, connectivity, name lengths."""
    problems: list[tuple[Loc, str]] = []
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
