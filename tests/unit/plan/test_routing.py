"""Path computation and admission control on the shipped topologies."""

import random
import time

import networkx as nx
import pytest

from tests.locations import TOPOS
from tests.unit.emulation.test_forwarding import synthetic_state
from twin.plan.routing import (
    RESERVABLE,
    AdmissionError,
    Reservation,
    Step,
    admit,
    fabric_graph,
    legs,
    link_classes,
    next_hops,
    replica_mac,
    replica_routes,
    reservation_steps,
    spanning_tree_ports,
    widest_path,
)
from twin.spec.topology import load_topology


def graph(name):
    topo = load_topology(TOPOS / f"{name}.yaml")
    st = synthetic_state(topo)
    for w, link in zip(st.wan, topo.links):
        w.emulated_bps = topo.emulated_rate(link.rate)
    return fabric_graph([w.__dict__ for w in st.wan])


def test_reservation_takes_the_shortest_delay_path_with_room():
    g = graph("fntf-4site")
    r = admit(g, Reservation("job", "beijing", "guangzhou", 100e6))
    assert r.path == ["beijing", "guangzhou"]  # the direct chord
    assert r.backup and r.backup[0] == "beijing" and r.backup[-1] == "guangzhou"
    assert set(zip(r.backup, r.backup[1:])).isdisjoint(zip(r.path, r.path[1:]))


def test_second_reservation_detours_when_the_short_path_is_full():
    g = graph("fntf-4site")
    cap = 400e6 * RESERVABLE
    admit(g, Reservation("a", "beijing", "guangzhou", cap))
    r = admit(g, Reservation("b", "beijing", "guangzhou", 50e6))
    assert r.path != ["beijing", "guangzhou"]


def test_oversubscription_is_refused_with_the_link_named():
    g = graph("ci-2site")
    admit(g, Reservation("a", "beijing", "wuhan", 300e6))
    with pytest.raises(AdmissionError) as exc:
        admit(g, Reservation("b", "beijing", "wuhan", 100e6))
    msg = str(exc.value)
    assert "'b'" in msg and "beijing-wuhan" in msg and "60 Mbit/s reservable left" in msg


@pytest.mark.timeout(30)
def test_a_rate_above_every_path_is_refused_at_once_on_forty_cities():
    """Every simple path urumqi-harbin of the 40-city mesh lacks room for 1.1 Tbit/s (real); a
    search that walks them in delay order did not end in 60 s."""
    g = graph("fntf-40city")
    t0 = time.monotonic()
    with pytest.raises(AdmissionError) as exc:
        admit(g, Reservation("huge", "urumqi", "harbin", 1.1e12 / 1000))
    took = time.monotonic() - t0
    assert took < 2, f"{took:.1f} s"
    msg = str(exc.value)
    # urumqi's links are 100 Gbit/s (100 Mbit/s emulated): the widest path is limited by one
    assert "'huge'" in msg and "90 Mbit/s reservable left" in msg and "urumqi" in msg.split("link ")[1]
    assert all(d["reserved"] == 0 for _, _, d in g.edges(data=True))  # nothing booked


@pytest.mark.timeout(60)
def test_admission_picks_the_shortest_path_with_room_as_walking_every_path_would():
    """The delay-shortest path with room, compared with the first path with room in
    nx.shortest_simple_paths' delay order (affordable on four sites), over random loads."""
    rng = random.Random(14)
    for _ in range(200):
        g = graph("fntf-4site")
        for _, _, d in g.edges(data=True):
            d["reserved"] = rng.choice([0.0, 0.5, 0.8, 1.0]) * d["capacity"] * RESERVABLE
        a, b = rng.sample(sorted(g.nodes), 2)
        rate = rng.uniform(0.05, 0.9) * 400e6 * RESERVABLE
        fits = [p for p in nx.shortest_simple_paths(g, a, b, weight="delay")
                if all(g[u][v]["capacity"] * RESERVABLE - g[u][v]["reserved"] + 1e-6 >= rate
                       for u, v in zip(p, p[1:]))]
        if not fits:
            with pytest.raises(AdmissionError, match="refused"):
                admit(g, Reservation("r", a, b, rate))
            continue
        assert admit(g, Reservation("r", a, b, rate)).path == fits[0]


def test_the_widest_path_has_the_largest_bottleneck():
    g = graph("fntf-4site")
    g["beijing"]["guangzhou"]["reserved"] = 300e6
    width, path = widest_path(g, "beijing", "guangzhou")
    left = lambda p: min(g[u][v]["capacity"] * RESERVABLE - g[u][v]["reserved"]  # noqa: E731
                         for u, v in zip(p, p[1:]))
    assert path[0] == "beijing" and path[-1] == "guangzhou" and width == left(path)
    assert width == max(left(p) for p in nx.all_simple_paths(g, "beijing", "guangzhou"))


def test_unknown_site_and_bad_rate():
    g = graph("ci-2site")
    with pytest.raises(AdmissionError, match="unknown site"):
        admit(g, Reservation("x", "beijing", "paris", 1e6))
    with pytest.raises(AdmissionError, match="positive"):
        admit(g, Reservation("x", "beijing", "wuhan", 0))


def test_next_hops_have_disjoint_backups_on_a_mesh():
    g = graph("fntf-4site")
    hops = next_hops(g)
    primary, backup = hops["beijing"]["guangzhou"]
    assert primary == "guangzhou" and backup in ("shanghai", "chengdu")
    assert hops["beijing"]["shanghai"][1] is not None


def test_no_backup_on_a_single_link():
    assert next_hops(graph("ci-2site"))["beijing"]["wuhan"] == ("wuhan", None)


def test_spanning_tree_is_loop_free_on_forty_cities():
    g = graph("fntf-40city")
    ports = spanning_tree_ports(g)
    assert sum(len(p) for p in ports.values()) == 2 * (40 - 1)  # a tree has n-1 edges


def test_replicated_ports_get_both_directions_on_edge_disjoint_paths():
    g = graph("fntf-4site")
    res = admit(g, Reservation("job", "beijing", "shanghai", 20e6, replicated_udp_ports=[7101]))
    routes = replica_routes([Reservation("plain", "beijing", "chengdu", 1e6), res])
    assert [(r.src, r.dst) for r in routes] == [("beijing", "shanghai"), ("shanghai", "beijing")]
    for r in routes:
        assert r.primary[0] == r.backup[0] == r.src and r.primary[-1] == r.backup[-1] == r.dst
        links = lambda path: {frozenset(e) for e in zip(path, path[1:])}  # noqa: E731
        assert links(r.primary).isdisjoint(links(r.backup))
        assert r.udp_ports == [7101] and r.dscp == res.probe_dscp
    assert len({r.tag for r in routes}) == 2


def test_no_replica_route_without_a_disjoint_backup():
    g = graph("ci-2site")  # one WAN link: nothing to replicate onto
    res = admit(g, Reservation("job", "beijing", "wuhan", 10e6, replicated_udp_ports=[7101]))
    assert res.backup == [] and replica_routes([res]) == []


def test_replica_macs_are_unique_locally_administered_unicast():
    macs = {replica_mac(tag, w) for tag in range(8) for w in range(300)}
    assert len(macs) == 8 * 300
    assert all(int(m[:2], 16) & 0b11 == 0b10 for m in macs)


def _detoured():
    """Two reservations beijing-guangzhou on fntf-4site: the first fills the direct chord, the
    second goes round; each with the other's primary as (part of) its backup."""
    g = graph("fntf-4site")
    cap = 400e6 * RESERVABLE
    return [admit(g, Reservation("a", "beijing", "guangzhou", cap, 34, 46)),
            admit(g, Reservation("b", "beijing", "guangzhou", 50e6, 36, 44))]


def test_each_direction_of_a_reservation_is_forwarded_on_its_own_path():
    a, b = _detoured()
    there, back = legs([a, b])[2:]
    assert there.primary == tuple(b.path) and back.primary == tuple(b.path[::-1])
    assert there.tag != back.tag
    first, middle = b.path[0], b.path[1]
    # the first switch: its workers' traffic onto the path, the backup's first hop if it is cut,
    # and traffic cranked back from the path onto the backup path
    assert reservation_steps(there, first) == [Step(None, b.path[1], b.backup[1]),
                                              Step(b.path[1], b.backup[1])]
    # a switch on the path: onwards, else back where it came from
    assert Step(first, b.path[2], first) in reservation_steps(there, middle)
    assert reservation_steps(there, b.path[-1]) == []  # the last switch delivers by address


def test_a_link_gives_classes_to_every_reservation_crossing_it_and_books_only_primaries():
    a, b = _detoured()
    direct = link_classes([a, b], "beijing", "guangzhou")
    assert [(c.reservation, c.index, c.booked_bps) for c in direct] == [("a", 0, a.rate_bps),
                                                                       ("b", 1, 0.0)]
    detour = link_classes([a, b], b.path[0], b.path[1])
    assert {c.reservation: c.booked_bps for c in detour}["b"] == b.rate_bps


def test_reservations_get_codepoints_of_their_own():
    from twin.errors import TwinError
    from twin.plan.reservations import assign_dscps
    from twin.spec.topology import ReservationSpec
    specs = [ReservationSpec(name="a", a="x", b="y", rate=1e9),
             ReservationSpec(name="b", a="x", b="y", rate=1e9, dscp=36),
             ReservationSpec(name="c", a="x", b="y", rate=1e9)]
    assert assign_dscps(specs) == [(34, 46), (36, 44), (38, 40)]
    specs.append(ReservationSpec(name="d", a="x", b="y", rate=1e9, probe_dscp=36))
    with pytest.raises(TwinError, match=r"reservations\[3:d\]\.probe_dscp: 36 is also "
                                        r"the dscp of reservation 'b'"):
        assign_dscps(specs)
