"""The ports calibration and ``twin trace`` measure on: in no reservation of the running twin,
whose switches would otherwise classify the measurement as the reservation's traffic (its DSCP,
its path, its classes) instead of the best effort every flow gets."""

from __future__ import annotations

import pytest

from tests.unit.emulation.test_forwarding import synthetic_state
from twin.emulation.build import check_controller
from twin.emulation.controller import write_description
from twin.errors import TwinError
from twin.measure import calibrate
from twin.measure.iperf import IPERF_PORT
from twin.measure.trace import DEFAULT_PORT, probe_port
from twin.plan.reservations import free_port, reservation_on_port
from twin.plan.routing import Reservation
from twin.spec.topology import parse_topology

TAKEN = {  # a reservation on every port the measurements start from, and the next UDP one
    "name": "t", "scale": {"bandwidth": 0.001},
    "sites": [{"name": "x", "lat": 40.0, "lon": 116.0, "workers": 1},
              {"name": "y", "lat": 30.6, "lon": 114.3, "workers": 1},
              {"name": "z", "lat": 31.2, "lon": 121.5, "workers": 1}],
    "links": [{"a": "x", "b": "y", "rate": "400Gbit"}, {"a": "y", "b": "z", "rate": "400Gbit"}],
    "reservations": [{"name": "probes", "a": "x", "b": "y", "rate": "10Gbit",
                      "tcp_ports": [IPERF_PORT], "udp_ports": [DEFAULT_PORT],
                      "replicated_udp_ports": [DEFAULT_PORT + 1]},
                     {"name": "far", "a": "y", "b": "z", "rate": "10Gbit", "tcp_ports": [5500],
                      "udp_ports": [DEFAULT_PORT + 2]}],
}


@pytest.fixture
def running(tmp_path, monkeypatch):
    """A twin whose detpath was given TAKEN's reservations (as bring-up writes them)."""
    monkeypatch.setenv("TWIN_RUN_DIR", str(tmp_path))
    topo = parse_topology(TAKEN)
    state = synthetic_state(topo)
    for i, w in enumerate(state.workers, 1):
        w.ip = f"10.0.0.{i}"
    write_description(state, check_controller(topo, "detpath"))
    state.controller = "detpath"
    return state


def test_the_first_port_in_no_reservation():
    rs = [Reservation("a", "x", "y", 1e6, tcp_ports=[5399], udp_ports=[7200],
                      replicated_udp_ports=[7201]),
          Reservation("b", "y", "z", 1e6, udp_ports=[7202, 7204])]
    assert free_port(rs, 7200, "udp") == 7203
    assert free_port(rs, 7300, "udp") == 7300
    assert free_port(rs, 7200, "tcp") == 7200 and free_port(rs, 5399, "tcp") == 5400
    assert free_port([], 7200, "udp") == 7200
    with pytest.raises(TwinError, match="every UDP port from 65535 up"):
        free_port([Reservation("c", "x", "y", 1e6, udp_ports=[65535])], 65535, "udp")
    assert reservation_on_port(rs, "y", "x", "udp", 7201) is rs[0]  # either direction
    assert reservation_on_port(rs, "x", "z", "udp", 7202) is None  # b is between y and z


def test_calibration_measures_on_ports_no_reservation_claims(running, monkeypatch):
    assert calibrate.measurement_ports(running) == (DEFAULT_PORT + 3, IPERF_PORT + 1)
    used: dict[str, list[int]] = {"probe": [], "iperf": []}

    def probe(src, dst, port, **kw):
        used["probe"].append(port)
        return type("P", (), {"result": lambda self: {"received": 1, "pdv_ms": 0.0}})()

    def iperf(src, dst, seconds, port):
        used["iperf"].append(port)
        return 1e6, 0

    monkeypatch.setattr(calibrate, "start_probe", probe)
    monkeypatch.setattr(calibrate, "iperf", iperf)
    monkeypatch.setattr(calibrate, "ping", lambda *a: [0.01])
    monkeypatch.setattr(calibrate, "calibration_row", lambda *a: type("R", (), {})())
    monkeypatch.setattr(calibrate, "path_compensation", lambda *a: (None, 0.0))
    from twin.measure.ceiling import Ceiling
    rows = calibrate.calibrate(running, {s: (0.0, 1e9) for s in "xyz"}, max_pairs=0,
                               ceiling=Ceiling(goodput_bps=1e9, mtu=1500, datapath="user"))
    assert len(rows) == 2  # both WAN links
    assert set(used["probe"]) == {DEFAULT_PORT + 3} and set(used["iperf"]) == {IPERF_PORT + 1}


def test_without_detpath_no_reservation_counts(running):
    """Only detpath classifies; a description an earlier detpath run left behind does not."""
    running.controller = "baseline"
    assert calibrate.measurement_ports(running) == (calibrate.PROBE_PORT, IPERF_PORT)
    assert probe_port(running, running.workers[0], running.workers[1], None) == DEFAULT_PORT


def test_trace_picks_a_free_port_and_refuses_a_reservations_port_between_its_sites(running):
    x1, y1, z1 = running.workers
    assert probe_port(running, x1, y1, None) == DEFAULT_PORT + 3
    with pytest.raises(TwinError, match=r"^--port 7201: a UDP port of reservation 'probes' "
                                        r"\(x-y\), so detpath forwards the probes on"):
        probe_port(running, y1, x1, DEFAULT_PORT + 1)
    assert probe_port(running, x1, z1, DEFAULT_PORT) == DEFAULT_PORT  # no reservation x-z
    assert probe_port(running, x1, y1, 9000) == 9000
