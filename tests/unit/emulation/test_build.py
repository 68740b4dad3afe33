"""Bring-up's decisions that need no kernel: what is refused before anything starts, and what
each stage asks of Mininet, Docker and tc, computed from the topology."""

import pytest

from tests.locations import TOPOS
from twin.emulation.build import (
    check_controller,
    container_limits,
    controller_ready_line,
    long_haul_params,
    worker_link_classes,
    worker_link_params,
)
from twin.errors import TwinError
from twin.spec.topology import load_topology, parse_topology


def two_sites(**over):
    doc = {
        "name": "t",
        "scale": {"bandwidth": 0.001},
        "sites": [
            {"name": "beijing", "lat": 39.904, "lon": 116.407, "workers": 2, "cpus": 1.5,
             "memory": "512M", "fabric": {"rate": "100Gbit", "delay": "20us"}},
            {"name": "wuhan", "lat": 30.593, "lon": 114.305, "workers": 1},
            {"name": "shanghai", "lat": 31.230, "lon": 121.474, "workers": 1},
        ],
        "links": [{"a": "beijing", "b": "wuhan", "rate": "400Gbit", "jitter": "100us",
                   "loss": 0.001},
                  {"a": "wuhan", "b": "shanghai", "rate": "400Gbit", "delay": "0ms"}],
        "reservations": [{"name": "job", "a": "beijing", "b": "wuhan", "rate": "200Gbit"},
                         {"name": "far", "a": "beijing", "b": "shanghai", "rate": "40Gbit",
                          "tcp_ports": [5201], "udp_ports": [7200],
                          "replicated_udp_ports": [7300]}],
    }
    doc.update(over)
    return parse_topology(doc)


def test_an_unknown_controller_is_refused_naming_the_choices():
    with pytest.raises(TwinError, match=r"unknown controller 'ryu' \(use none, detpath, baseline\)"):
        check_controller(two_sites(), "ryu")


def test_only_detpath_admits_reservations():
    topo = two_sites()
    assert check_controller(topo, "none") == []
    assert check_controller(topo, "baseline") == []
    admitted = check_controller(topo, "detpath")
    assert [r.name for r in admitted] == ["job", "far"]
    assert admitted[0].path == ["beijing", "wuhan"]
    assert admitted[1].path == ["beijing", "wuhan", "shanghai"]
    assert admitted[0].rate_bps == 200e6  # emulated units


def test_a_reservation_that_does_not_fit_is_refused_before_anything_starts():
    topo = two_sites(reservations=[{"name": "big", "a": "beijing", "b": "wuhan",
                                    "rate": "399Gbit"}])
    with pytest.raises(TwinError, match=r"reservation 'big'.*refused: link beijing-wuhan"):
        check_controller(topo, "detpath")
    assert check_controller(topo, "baseline") == []  # nothing to admit without detpath


def test_container_limits_per_worker():
    topo = two_sites()
    assert container_limits(topo.sites[0]) == {"nano_cpus": 1_500_000_000,
                                               "mem_limit": 512 * 1024**2}
    assert container_limits(topo.sites[1]) == {"nano_cpus": None, "mem_limit": None}


def test_worker_link_is_the_site_fabric_emulated():
    topo = two_sites()
    assert worker_link_params(topo, topo.sites[0]) == {"bw": 100.0, "mtu": topo.mtu,
                                                       "delay": "20us"}
    assert worker_link_params(topo, topo.sites[1])["delay"] is None  # no netem for 0 delay


def test_long_haul_link_params():
    topo = load_topology(TOPOS / "ci-2site.yaml")
    link = topo.links[0]
    params = long_haul_params(topo, link)
    assert params["bw"] == 400.0  # 400 Gbit/s at 1/1000, in Mbit/s as Mininet takes it
    assert params["delay"] == f"{topo.link_delay(link) * 1e6:.0f}us"
    assert 6500 < int(params["delay"][:-2]) < 7000  # ~1,370 km of fiber
    assert params["jitter"] is None and params["loss"] is None
    assert params["queue_bytes"] == topo.link_queue_bytes(link) > 0
    assert params["mtu"] == topo.mtu


def test_long_haul_impairments_in_mininet_units_and_a_zero_delay_still_given():
    topo = two_sites()
    lossy = long_haul_params(topo, topo.links[0])
    assert lossy["jitter"] == "100us" and lossy["loss"] == pytest.approx(0.1)  # percent
    # 0 us is passed on: every WAN link keeps its delay stage (delay line or netem)
    assert long_haul_params(topo, topo.links[1])["delay"] == "0us"


def test_worker_links_carry_every_reservation_of_their_site():
    from twin.emulation.state import WorkerInfo
    topo = two_sites()
    workers = [WorkerInfo(f"{site}{i}", site, i, ip, "", "", 0)
               for site, i, ip in (("beijing", 0, "10.0.0.1"), ("beijing", 1, "10.0.0.2"),
                                   ("wuhan", 0, "10.0.1.1"), ("shanghai", 0, "10.0.2.1"))]
    classes = worker_link_classes(check_controller(topo, "detpath"), workers)
    assert [(c.index, c.peers) for c in classes["beijing"]] == [(0, ("10.0.1.1",)),
                                                                (1, ("10.0.2.1",))]
    assert [(c.index, c.peers) for c in classes["wuhan"]] == [(0, ("10.0.0.1", "10.0.0.2"))]
    far = classes["shanghai"][0]
    assert far.udp_ports == (7200, 7300) and far.tcp_ports == (5201,)  # replicated probes too
    assert far.rate_bps == 40e6 and (far.dscp, far.probe_dscp) == (36, 44)  # assigned: AF42, VA


def test_controller_ready_line():
    assert controller_ready_line("baseline", {"switches": 2}) == \
        "controller baseline: 2 switches programmed"
    assert controller_ready_line("detpath", {"switches": 4, "flows": 96, "wan_ports": 8,
                                             "wiring_verified": 8}) == \
        ("controller detpath: 4 switches programmed, 96 flows, wiring of 8/8 WAN ports "
         "verified by LLDP")
