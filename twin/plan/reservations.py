"""Admission control of the topology's reservations, before anything starts: each one placed on a
path with room, or refused with the link that is short.
"""

from __future__ import annotations

from twin.errors import TwinError
from twin.plan.routing import AdmissionError, Reservation, admit
from twin.spec.topology import Topology


def admit_reservations(topo: Topology) -> list[Reservation]:
    """Place every reservation of the topology or refuse with the link that is short."""
    g = topo.graph()
    out = []
    for r in topo.reservations:
        res = Reservation(r.name, r.a, r.b, topo.emulated_rate(r.rate), r.dscp, r.probe_dscp,
                          list(r.tcp_ports), list(r.udp_ports), list(r.replicated_udp_ports))
        try:
            out.append(admit(g, res))
        except AdmissionError as exc:
            raise TwinError(f"{exc} (real rate {r.rate / 1e9:g} Gbit/s at scale "
                            f"{topo.scale.bandwidth:g})") from None
    return out


def reserved_per_link(reservations: list[Reservation]) -> dict[frozenset, float]:
    load: dict[frozenset, float] = {}
    for r in reservations:
        for u, v in zip(r.path, r.path[1:]):
            load[frozenset((u, v))] = load.get(frozenset((u, v)), 0.0) + r.rate_bps
    return load

