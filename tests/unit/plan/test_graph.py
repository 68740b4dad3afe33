"""The one fabric graph: its attributes, the model's and the running twin's views agreeing, and
every route, admission, flow and model fabric of the shipped topologies as they were computed
before the graph had a single builder."""

import hashlib
import json
from dataclasses import asdict

import pytest

from tests.locations import TOPOS
from tests.unit.emulation.test_forwarding import synthetic_state
from twin.emulation.forwarding import static_flows
from twin.measure.calibrate import fabric_of, path_properties
from twin.model.fabric import fabric_from_topology
from twin.plan import routing
from twin.plan.graph import fabric_graph
from twin.plan.reservations import admit_reservations, reserved_per_link
from twin.spec.topology import load_topology

SHIPPED = ["ci-2site", "fntf-4site", "fntf-40city"]


def wired_state(topo):
    st = synthetic_state(topo)
    for w, link in zip(st.wan, topo.links):
        w.emulated_bps = topo.emulated_rate(link.rate)
    return st


def test_edges_carry_delay_capacity_reserved_and_ports_once_wired():
    wan = [{"a": "x", "b": "y", "delay_s": 0.01, "emulated_bps": 1e8}]
    g = fabric_graph(wan, sites=["x", "y", "z"])
    assert list(g.nodes) == ["x", "y", "z"]  # a site without a link is still a node
    assert g["x"]["y"] == {"delay": 0.01, "capacity": 1e8, "reserved": 0.0}
    wired = [dict(wan[0], switch_a="s1", port_a=3, switch_b="s2", port_b=4)]
    assert fabric_graph(wired)["y"]["x"]["ports"] == {"x": ("s1", 3), "y": ("s2", 4)}


@pytest.mark.parametrize("name", SHIPPED)
def test_the_model_and_the_running_twin_see_the_same_graph(name):
    topo = load_topology(TOPOS / f"{name}.yaml")
    model = topo.graph()
    twin = fabric_graph(asdict(w) for w in wired_state(topo).wan)
    assert list(model.nodes) == [s.name for s in topo.sites]
    assert set(twin.nodes) == set(model.nodes)
    for u, v, data in model.edges(data=True):
        assert twin[u][v]["delay"] == data["delay"] and twin[u][v]["capacity"] == data["capacity"]
        assert "ports" not in data and "ports" in twin[u][v]


def routes(name: str) -> dict:
    """Everything derived from the fabric graph: the static flows' and the model's next hops,
    detpath's primary and backup hops, baseline's spanning tree, admitted reservations and their
    1+1 routes, calibration's configured paths and the model's fabric."""
    topo = load_topology(TOPOS / f"{name}.yaml")
    st = wired_state(topo)
    g = routing.fabric_graph([w.__dict__ for w in st.wan])  # as determinism.py builds it
    admitted = admit_reservations(topo)
    sites = [s.name for s in topo.sites][:6]
    return {
        "model_next_hops": routing.primary_next_hops(topo.graph()),
        "static_flows": static_flows(topo, st),
        "controller_next_hops": {s: {d: list(h) for d, h in t.items()}
                                 for s, t in routing.next_hops(g).items()},
        "spanning_tree_ports": {sw: sorted(p) for sw, p in routing.spanning_tree_ports(g).items()},
        "admitted": [asdict(r) for r in admitted],
        "reserved_per_link": sorted([sorted(k), v] for k, v in reserved_per_link(admitted).items()),
        "replica_routes": [asdict(r) for r in routing.replica_routes(admitted)],
        "calibration_paths": {f"{a}>{b}": list(path_properties(g, a, b, fabric_of(topo)))
                              for a in sites for b in sites},
        # the two-tier fabric (the real paths it also carries are checked in tests/unit/model)
        "model_fabric": {k: v for k, v in asdict(fabric_from_topology(topo)).items() if k != "paths"},
    }


# sha256 (first 16 hex digits) of each item of routes() as JSON with sorted keys, computed with
# the code of main before the fabric graph had one builder (four, each with its own attribute
# names); switch names with the default prefix "tw".
BEFORE = {
    "ci-2site": {
        "admitted": "1fb6592b54521ded",
        "calibration_paths": "cd517bea676fbafd",
        "controller_next_hops": "ca638ed704e9dec4",
        "model_fabric": "b2bf831d2679b539",
        "model_next_hops": "70733e8680a15a87",
        "replica_routes": "4f53cda18c2baa0c",
        "reserved_per_link": "135b6b073f572882",
        "spanning_tree_ports": "1c124aa04471b999",
        "static_flows": "d768bd30adf1d48f",
    },
    "fntf-4site": {
        "admitted": "6dd7ea5f05f0534e",
        "calibration_paths": "b0ac1d3080442799",
        "controller_next_hops": "2f116beda55aaa34",
        "model_fabric": "0935fc45ab15a7d2",
        "model_next_hops": "4718fd4240ee12ae",
        "replica_routes": "4e1775131033ed17",
        "reserved_per_link": "ab794821d1a64c37",
        "spanning_tree_ports": "304ec9caa7092553",
        "static_flows": "1163a9236dd49bc4",
    },
    "fntf-40city": {
        "admitted": "4f53cda18c2baa0c",
        "calibration_paths": "c0a0a34f2b362220",
        "controller_next_hops": "75eb4e7237b8939c",
        "model_fabric": "833022837983cc09",
        "model_next_hops": "963b850e10b178dc",
        "replica_routes": "4f53cda18c2baa0c",
        "reserved_per_link": "4f53cda18c2baa0c",
        "spanning_tree_ports": "12abf9ea8f454f23",
        "static_flows": "cc8ed6aef995b4fe",
    },
}


@pytest.mark.parametrize("name", SHIPPED)
def test_routes_admissions_flows_and_model_are_those_computed_before(name, monkeypatch):
    monkeypatch.setenv("TWIN_PREFIX", "tw")
    now = {k: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:16]
           for k, v in routes(name).items()}
    changed = sorted(k for k in BEFORE[name] if now.get(k) != BEFORE[name][k])
    assert not changed, f"{name}: {', '.join(changed)} differ from before"


def test_the_digests_see_a_changed_route(monkeypatch):
    """The check above would catch a route that moves: detpath's backup hop on the 4-site mesh."""
    monkeypatch.setenv("TWIN_PREFIX", "tw")
    r = routes("fntf-4site")
    r["controller_next_hops"]["beijing"]["guangzhou"][1] = "nowhere"
    digest = hashlib.sha256(json.dumps(r["controller_next_hops"], sort_keys=True).encode())
    assert digest.hexdigest()[:16] != BEFORE["fntf-4site"]["controller_next_hops"]
