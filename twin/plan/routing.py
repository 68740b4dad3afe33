"""Explicit paths with reserved bandwidth: the deterministic network's control logic, pure.

The controller gets the fabric from the twin's model (sites, WAN links with delay and emulated
rate, switch ports: the graph of twin.plan.graph), never from discovery. Reservations are
admitted on delay-shortest paths with enough unreserved capacity on every link; a request that
would oversubscribe a link is refused with a message, never silently degraded. Each reservation
also gets an edge-disjoint backup path. Its traffic is forwarded on its own path (reservation_steps),
not on the shortest-delay next hops best effort uses (next_hops), and each link of its paths
gives it classes of its own (link_classes).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Optional

import networkx as nx

from twin.plan.graph import (
    fabric_graph,  # noqa: F401  (twin.experiments.determinism imports it here)
)

RESERVABLE = 0.9  # share of a link that reservations may take; the rest stays for best effort


class AdmissionError(ValueError):
    """A reservation cannot be placed without oversubscribing a link."""


@dataclass
class Reservation:
    name: str
    src: str  # site
    dst: str  # site
    rate_bps: float
    dscp: int = 34
    probe_dscp: int = 46
    tcp_ports: list[int] = field(default_factory=list)
    udp_ports: list[int] = field(default_factory=list)
    replicated_udp_ports: list[int] = field(default_factory=list)  # 1+1 (see replica_routes)
    path: list[str] = field(default_factory=list)
    backup: list[str] = field(default_factory=list)


@dataclass
class ReplicaRoute:
    """One direction of a reservation whose packets travel 1+1: a copy on ``primary`` as usual
    and a copy on ``backup``, an edge-disjoint path, which can only fail at the same time if two
    links do. ``tag`` tells the copies' routes apart in the fabric (see replica_mac)."""

    reservation: str
    src: str
    dst: str
    primary: list[str]
    backup: list[str]
    tag: int
    udp_ports: list[int]
    dscp: int  # the reservation's probe class, set on both copies


@dataclass(frozen=True)
class Step:
    """What one switch does with one direction of a reservation: traffic that arrives from
    ``came_from`` (a neighbour site; None: the switch's own workers) leaves towards ``primary``
    while that port is live, else towards ``backup`` (None: dropped). A backup equal to
    ``came_from`` sends it back where it came from (crankback, towards the first switch, which
    puts it on the backup path)."""

    came_from: Optional[str]
    primary: str
    backup: Optional[str] = None


@dataclass(frozen=True)
class Leg:
    """One direction of an admitted reservation: from ``src`` to ``dst`` on ``primary``, with
    ``backup`` (edge-disjoint, may be empty) for failover. ``tag`` is unique per reservation and
    direction (2 * its index + direction)."""

    reservation: str
    tag: int
    src: str
    dst: str
    primary: tuple[str, ...]
    backup: tuple[str, ...]


def legs(reservations: list[Reservation]) -> list[Leg]:
    """Both directions of every reservation placed on a path, in the order of the list."""
    out = []
    for i, r in enumerate(reservations):
        if not r.path:
            continue
        out.append(Leg(r.name, 2 * i, r.src, r.dst, tuple(r.path), tuple(r.backup)))
        out.append(Leg(r.name, 2 * i + 1, r.dst, r.src, tuple(r.path[::-1]),
                       tuple(r.backup[::-1])))
    return out


def reservation_steps(leg: Leg, site: str) -> list[Step]:
    """What ``site``'s switch does with one direction of a reservation (nothing off its paths,
    nothing at its last switch, which delivers by destination address).

    On the primary path the next hop is watched: the first switch fails over to the backup
    path's first hop; a later one sends the traffic back the way it came, and each switch before
    it passes it back (crankback) until the first switch sends it down the backup path. So a cut
    anywhere on the primary path moves the reservation onto its own backup path, the one link
    sets it was given classes on, not onto whatever path is shortest around the cut. Without a
    backup path there is nowhere to go: no crankback either. On the backup path every switch
    forwards to the next one.
    """
    steps: list[Step] = []
    p, q = leg.primary, leg.backup
    if site in p[:-1]:
        i = p.index(site)
        if i == 0:
            steps.append(Step(None, p[1], q[1] if q else None))
            if q:
                steps.append(Step(p[1], q[1]))  # crankback reaching the first switch
        else:
            steps.append(Step(p[i - 1], p[i + 1], p[i - 1] if q else None))
            if q:
                steps.append(Step(p[i + 1], p[i - 1]))  # crankback passing through
    if site in q[1:-1]:
        j = q.index(site)
        steps.append(Step(q[j - 1], q[j + 1]))
    return steps


@dataclass(frozen=True)
class LinkClass:
    """A reservation's classes on one WAN link: ``booked_bps`` where its primary path crosses the
    link (what admission booked), 0 where only its backup path does (the classes are there so
    failover keeps it apart from best effort and from other reservations). ``index``: the
    reservation's place in the topology, which names its HTB classes on every link."""

    reservation: str
    index: int
    dscp: int
    probe_dscp: int
    rate_bps: float  # the reservation's rate (its queue is sized for it on either path)
    booked_bps: float


def _links(path: list[str]) -> set[frozenset]:
    return {frozenset(e) for e in zip(path, path[1:])}


def link_classes(reservations: list[Reservation], a: str, b: str) -> list[LinkClass]:
    """The reservations whose primary or backup path crosses the link a-b, in the list's order."""
    link = frozenset((a, b))
    out = []
    for i, r in enumerate(reservations):
        booked = link in _links(r.path)
        if booked or link in _links(r.backup):
            out.append(LinkClass(r.name, i, r.dscp, r.probe_dscp, r.rate_bps,
                                  r.rate_bps if booked else 0.0))
    return out


def _left(g: nx.Graph, u: str, v: str) -> float:
    """Bit/s reservations may still take on the link u-v."""
    e = g[u][v]
    return float(e["capacity"] * RESERVABLE - e["reserved"])


def widest_path(g: nx.Graph, src: str, dst: str) -> tuple[float, list[str]]:
    """The path from ``src`` to ``dst`` whose narrowest link has the most reservable bit/s left,
    and that bit/s ((0.0, []) without a path). A reservation travels on one path, never split, so
    this bottleneck (not the max-flow between the sites, which may add several paths up) is the
    most any reservation between them can get. Dijkstra with min() for + and the widest first:
    O(E log V), whatever the number of simple paths."""
    width = {src: math.inf}
    prev: dict[str, str] = {}
    done: set[str] = set()
    heap: list[tuple[float, str]] = [(-math.inf, src)]
    while heap:
        w, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        if u == dst:
            break
        for v in g[u]:
            cand = min(-w, _left(g, u, v))
            if v not in done and cand > width.get(v, -math.inf):
                width[v], prev[v] = cand, u
                heapq.heappush(heap, (-cand, v))
    if dst not in done or src == dst:
        return 0.0, []
    path = [dst]
    while path[-1] != src:
        path.append(prev[path[-1]])
    return width[dst], path[::-1]


def admit(g: nx.Graph, res: Reservation) -> Reservation:
    """Place a reservation on the delay-shortest path that has room; book it on both directions'
    links (a training job's collective traffic is symmetric) and find an edge-disjoint backup.

    Bounded on any mesh: the widest path first tells whether any path has room (if not, the
    refusal names the link that limits the best one), then one Dijkstra over the links with room
    finds the delay-shortest such path. No candidate paths are enumerated: there can be
    exponentially many simple paths, and walking them in delay order until one has room never
    ends on a 40-site mesh when none has.
    """
    if res.src not in g or res.dst not in g:
        raise AdmissionError(f"reservation {res.name!r}: unknown site {res.src if res.src not in g else res.dst!r}")
    if res.rate_bps <= 0:
        raise AdmissionError(f"reservation {res.name!r}: rate must be positive")
    best, widest = widest_path(g, res.src, res.dst)
    if not widest:
        raise AdmissionError(f"reservation {res.name!r}: no path from {res.src} to {res.dst}")
    if best + 1e-6 < res.rate_bps:
        u, v = next((u, v) for u, v in zip(widest, widest[1:]) if _left(g, u, v) <= best)
        raise AdmissionError(
            f"reservation {res.name!r} ({res.rate_bps / 1e6:g} Mbit/s {res.src}->{res.dst}) "
            f"refused: link {u}-{v} has {max(0.0, best) / 1e6:g} Mbit/s reservable left "
            f"({RESERVABLE:.0%} of {g[u][v]['capacity'] / 1e6:g} Mbit/s minus existing "
            f"reservations), and every path from {res.src} to {res.dst} has a link with no more")
    room = nx.subgraph_view(g, filter_edge=lambda u, v: _left(g, u, v) + 1e-6 >= res.rate_bps)
    path = nx.shortest_path(room, res.src, res.dst, weight="delay")  # the widest path is in it
    for u, v in zip(path, path[1:]):
        g[u][v]["reserved"] += res.rate_bps
    res.path = path
    res.backup = disjoint_backup(g, path)
    return res


def disjoint_backup(g: nx.Graph, path: list[str]) -> list[str]:
    h = g.copy()
    h.remove_edges_from(zip(path, path[1:]))
    try:
        return nx.shortest_path(h, path[0], path[-1], weight="delay")
    except nx.NetworkXNoPath:
        return []


def primary_next_hops(g: nx.Graph) -> dict[str, dict[str, str]]:
    """site -> destination site -> next site on the shortest one-way-delay path. The one routing
    both the static flows (controller none) and detpath's primary paths use."""
    paths = dict(nx.all_pairs_dijkstra_path(g, weight="delay"))
    return {src: {dst: path[1] for dst, path in paths[src].items() if dst != src}
            for src in g.nodes}


def next_hops(g: nx.Graph) -> dict[str, dict[str, tuple[Optional[str], Optional[str]]]]:
    """site -> destination site -> (primary next site, backup next site or None).

    The backup is the first hop of the shortest path that avoids the primary link.
    """
    table: dict[str, dict[str, tuple[Optional[str], Optional[str]]]] = {}
    primaries = primary_next_hops(g)
    for src in g.nodes:
        table[src] = {}
        for dst in g.nodes:
            if src == dst:
                continue
            primary = primaries[src][dst]
            h = g.copy()
            h.remove_edge(src, primary)
            try:
                backup = nx.shortest_path(h, src, dst, weight="delay")[1]
            except nx.NetworkXNoPath:
                backup = None
            table[src][dst] = (primary, backup)
    return table


def replica_routes(reservations: list[Reservation]) -> list[ReplicaRoute]:
    """Both directions of every reservation with replicated ports and a disjoint backup path."""
    routes = []
    for i, r in enumerate(reservations):
        if not (r.replicated_udp_ports and r.backup and r.path):
            continue
        for d, (src, dst, primary, backup) in enumerate((
                (r.src, r.dst, r.path, r.backup),
                (r.dst, r.src, r.path[::-1], r.backup[::-1]))):
            routes.append(ReplicaRoute(r.name, src, dst, list(primary), list(backup), 2 * i + d,
                                       list(r.replicated_udp_ports), r.probe_dscp))
    return routes


def replica_mac(tag: int, worker_index: int) -> str:
    """The destination MAC a backup copy carries through the fabric: locally administered,
    unique per route and destination worker, so transit switches forward it on the backup path
    without touching the IP header (its DSCP keeps its class) and the last switch restores the
    worker's MAC."""
    return f"02:fe:{tag:02x}:00:{worker_index >> 8:02x}:{worker_index & 0xff:02x}"


def spanning_tree_ports(g: nx.Graph) -> dict[str, set[int]]:
    """switch -> WAN ports on a minimum-delay spanning tree: where the baseline may flood."""
    tree = nx.minimum_spanning_tree(g, weight="delay")
    ports: dict[str, set[int]] = {}
    for u, v, data in tree.edges(data=True):
        for site in (u, v):
            sw, port = data["ports"][site]
            ports.setdefault(sw, set()).add(port)
    return ports
