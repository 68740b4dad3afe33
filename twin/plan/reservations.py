"""Admission control of the topology's reservations, before anything starts: each one given
codepoints of its own, placed on a path with room, or refused with the field or link at fault.

Why a DSCP per reservation (two: its job's and its probes'): the switch that first sees a
reservation's traffic marks it, and everything after it tells reservations apart by that mark
alone: HTB's filters on every WAN and worker egress, and the delay line, which serializes each
class on its own. A mark per reservation gives each one its own classes, with its own rate, on
every link of its paths; with a shared mark two reservations on one link would share one class
and one rate. Codepoints a reservation writes in the topology are kept and checked (distinct
across the topology, never 0, which is best effort); the others are assigned in file order from
the DiffServ codepoints operators recognize (AF4x-AF1x for jobs, EF, VOICE-ADMIT and CS5-CS1 for
probes), then from any codepoint still free except CS6/CS7 (network control). The first
reservation of a file that writes none gets AF41/EF (34/46), the topology's defaults.
"""

from __future__ import annotations

from typing import Optional

from twin.errors import InputError, TwinError
from twin.plan.routing import AdmissionError, Reservation, admit, link_classes
from twin.spec.loading import Loc, field_path
from twin.spec.topology import ReservationSpec, Topology

JOB_DSCPS = (34, 36, 38, 26, 28, 30, 18, 20, 22, 10, 12, 14)  # AF41, AF42, AF43, AF31 ... AF13
PROBE_DSCPS = (46, 44, 40, 32, 24, 16, 8)  # EF, VOICE-ADMIT, CS5, CS4, CS3, CS2, CS1
NOT_ASSIGNED = (0, 48, 56)  # best effort, and network control (CS6, CS7)
# Reservations whose classes one WAN link may carry (primary or backup path): two lanes each in
# the delay line, which has 1 + 2 x this many (MAX_CLASSES in twin/emulation/delayline.c).
MAX_LINK_RESERVATIONS = 16


class ReservationError(InputError):
    """A reservation refused before anything starts, as bad input: ``loc`` is the field at fault
    and ``reason`` why, kept apart so that ``twin validate`` can name the field's line too
    (Document.problem); the one line without it names the file (``source``) and the field."""

    def __init__(self, source: str, specs: list[ReservationSpec], loc: Loc, reason: str):
        self.loc, self.reason = loc, reason
        field = field_path(loc, {"reservations": [{"name": r.name} for r in specs]})
        super().__init__([f"{source + ': ' if source else ''}{field}: {reason}"])


def assign_dscps(specs: list[ReservationSpec], source: str = "") -> list[tuple[int, int]]:
    """(job DSCP, probe DSCP) of every reservation: what it wrote, checked, or assigned (see the
    module docstring). ReservationError names the field of a codepoint that cannot be used."""
    owner: dict[int, str] = {}
    for i, r in enumerate(specs):
        for key in ("dscp", "probe_dscp"):
            if key not in r.model_fields_set:
                continue
            value = getattr(r, key)
            if value == 0:
                raise ReservationError(source, specs, ("reservations", i, key),
                                       "0 is best effort; a reservation needs a codepoint of its "
                                       "own")
            if value in owner:
                raise ReservationError(source, specs, ("reservations", i, key),
                                       f"{value} is also {owner[value]}; each reservation needs "
                                       "codepoints of its own (leave dscp and probe_dscp out to "
                                       "have them assigned)")
            owner[value] = f"the {key} of reservation {r.name!r}"
    rest = [d for d in range(64) if d not in NOT_ASSIGNED]
    out = []
    for i, r in enumerate(specs):
        pair = []
        for key, preferred in (("dscp", JOB_DSCPS), ("probe_dscp", PROBE_DSCPS)):
            if key in r.model_fields_set:
                pair.append(getattr(r, key))
                continue
            free = next((d for d in (*preferred, *rest) if d not in owner), None)
            if free is None:
                raise ReservationError(source, specs, ("reservations", i, key),
                                       f"more than {len(rest) // 2} reservations; no DSCP is left "
                                       f"for {r.name!r}'s {key}")
            owner[free] = f"the {key} of reservation {r.name!r}"
            pair.append(free)
        out.append((pair[0], pair[1]))
    return out


def check_ports_apart(specs: list[ReservationSpec], source: str = "") -> None:
    """Two reservations between the same two sites need different ports: the switch tells them
    apart by their endpoints and ports."""
    seen: dict[tuple[frozenset, str, int], str] = {}
    for i, r in enumerate(specs):
        pair = frozenset((r.a, r.b))
        for key, proto, ports in (("tcp_ports", "tcp", r.tcp_ports),
                                  ("udp_ports", "udp", r.udp_ports),
                                  ("replicated_udp_ports", "udp", r.replicated_udp_ports)):
            for port in ports:
                other = seen.get((pair, proto, port))
                if other is not None and other != r.name:
                    raise ReservationError(source, specs, ("reservations", i, key),
                                           f"{proto} port {port} is also reservation {other!r}'s, "
                                           "between the same sites; the switches could not tell "
                                           "the two apart")
                seen[(pair, proto, port)] = r.name


def admit_reservations(topo: Topology, source: str = "") -> list[Reservation]:
    """Place every reservation of the topology or refuse with the field or link at fault
    (ReservationError); ``source``: the topology file, named in the refusal. Bounded on any
    mesh (see admit), so ``twin validate`` runs it too and ``twin up`` never finds out late."""
    check_ports_apart(topo.reservations, source)
    dscps = assign_dscps(topo.reservations, source)
    g = topo.graph()
    out = []
    for i, (r, (dscp, probe_dscp)) in enumerate(zip(topo.reservations, dscps)):
        res = Reservation(r.name, r.a, r.b, topo.emulated_rate(r.rate), dscp, probe_dscp,
                          list(r.tcp_ports), list(r.udp_ports), list(r.replicated_udp_ports))
        try:
            out.append(admit(g, res))
        except AdmissionError as exc:
            raise ReservationError(source, topo.reservations, ("reservations", i, "rate"),
                                   f"{exc} (real rate {r.rate / 1e9:g} Gbit/s at scale "
                                   f"{topo.scale.bandwidth:g})") from None
    for u, v in g.edges:
        crossing = link_classes(out, u, v)
        if len(crossing) > MAX_LINK_RESERVATIONS:
            raise ReservationError(source, topo.reservations, ("reservations",),
                                   f"link {u}-{v} would carry the classes of {len(crossing)} "
                                   "reservations (on their primary or backup path); a link has "
                                   f"room for {MAX_LINK_RESERVATIONS}")
    return out


def reserved_per_link(reservations: list[Reservation]) -> dict[frozenset, float]:
    """Bit/s admission booked on each link: every reservation on the links of its primary path
    (its backup path is not booked; failover moves it there in its own classes)."""
    load: dict[frozenset, float] = {}
    for r in reservations:
        for u, v in zip(r.path, r.path[1:]):
            load[frozenset((u, v))] = load.get(frozenset((u, v)), 0.0) + r.rate_bps
    return load


def ports_of(r: Reservation, proto: str) -> list[int]:
    """The ``proto`` ("tcp" or "udp") ports the switches classify as the reservation's."""
    return list(r.tcp_ports) if proto == "tcp" else [*r.udp_ports, *r.replicated_udp_ports]


def reservation_on_port(reservations: list[Reservation], a: str, b: str, proto: str,
                        port: int) -> Optional[Reservation]:
    """The reservation between sites ``a`` and ``b`` that claims ``proto`` ``port``, if any:
    traffic between their workers on it is classified as the reservation's (its DSCP, its path,
    its classes), not best effort."""
    return next((r for r in reservations if {r.src, r.dst} == {a, b}
                 and port in ports_of(r, proto)), None)


def free_port(reservations: list[Reservation], start: int, proto: str) -> int:
    """The first ``proto`` port from ``start`` up that no reservation claims (between any two
    sites): a measurement meant to see the path as every flow sees it must not be classified as
    a reservation's. TwinError if none is left below 65536."""
    taken = {p for r in reservations for p in ports_of(r, proto)}
    for port in range(start, 65536):
        if port not in taken:
            return port
    raise TwinError(f"every {proto.upper()} port from {start} up is a reservation's")
