"""detpath on netem links: every reservation class on a WAN egress gets its own netem leaf with
the fiber's delay (a bfifo leaf would drop the delay), and live changes reach every leaf."""

from __future__ import annotations

import statistics

import pytest

from tests.integration.machine import early_ms, leftovers, ns_run
from tests.integration.stock_kernel.conftest import LOOSE_MS, netem_delays, run, tc_time_close
from tests.locations import ROOT, TOPOS
from twin.emulation import cleanup, runtime
from twin.measure.ping import parse_ping_rtts
from twin.spec.topology import load_topology

TWIN = str(ROOT / ".venv" / "bin" / "twin")
# the reservation's probes and job, the switches' BFD (tc.NETWORK_CONTROL), best effort
CLASSES = {"30:": "1:30", "20:": "1:20", "40:": "1:40", "10:": "1:10"}


@pytest.fixture(scope="module")
def detpath_twin(daemons):
    cleanup.clean()
    topo = load_topology(TOPOS / "ci-2site.yaml")
    _, state = runtime.up(topo, str(TOPOS / "ci-2site.yaml"), "detpath", progress=lambda s: None)
    yield topo, state
    runtime.down()
    left = leftovers()
    assert not any(left.values()), f"twin down left: {left}"


def test_each_class_has_a_netem_leaf_with_the_fiber_delay(detpath_twin):
    topo, state = detpath_twin
    delay = topo.link_delay(topo.links[0])
    for w in state.wan:
        assert w.delayline is None and w.class_dscps == [46, 34]
        for dev in (w.intf_a, w.intf_b):
            classes = run(["tc", "class", "show", "dev", dev])
            for classid in ("1:1", *CLASSES.values()):
                assert f"class htb {classid} " in classes, classes
            leaves = netem_delays(dev)
            assert {h: leaf["parent"] for h, leaf in leaves.items()} == CLASSES, leaves
            for leaf in leaves.values():  # the fiber's less what delay compensation takes off
                assert tc_time_close(leaf["delay_s"], delay - w.comp_first_s), leaf["line"]
            filters = run(["tc", "filter", "show", "dev", dev])
            assert "flowid 1:30" in filters and "flowid 1:20" in filters


def test_reserved_path_carries_traffic_with_the_fiber_delay(detpath_twin):
    topo, state = detpath_twin
    cfg = 2 * topo.link_delay(topo.links[0]) * 1e3
    src, dst = state.worker("beijing1"), state.worker("wuhan1")
    got = parse_ping_rtts(ns_run(src.pid, ["ping", "-n", "-c", "20", "-i", "0.05", dst.ip]).stdout)
    assert len(got) >= 18, got
    early = early_ms(state, ["beijing", "wuhan"], round_trip=True)
    assert min(got) >= cfg - early and statistics.median(got) <= cfg + LOOSE_MS, got


def test_link_set_delay_reaches_every_class_leaf(detpath_twin):
    topo, state = detpath_twin
    w = state.wan[0]
    try:
        run([TWIN, "link", "set", w.a, w.b, "--delay", "12ms"])
        for dev in (w.intf_a, w.intf_b):
            leaves = netem_delays(dev)
            assert set(leaves) == set(CLASSES)
            assert all(tc_time_close(leaf["delay_s"], 0.012 - w.comp_first_s)
                       for leaf in leaves.values()), (w.comp_first_s, leaves)
    finally:
        run([TWIN, "link", "set", w.a, w.b,
             "--delay", f"{topo.link_delay(topo.links[0]) * 1e6:.0f}us"])


def test_link_set_rate_reaches_every_class_and_every_netem_leaf(detpath_twin):
    topo, state = detpath_twin
    w = state.wan[0]
    real = topo.links[0].rate
    try:
        run([TWIN, "link", "set", w.a, w.b, "--rate", f"{real / 4 / 1e9:g}Gbit"])
        quarter = int(w.emulated_bps / 4 / 1e6)
        for dev in (w.intf_a, w.intf_b):
            assert f"class htb 1:1 root rate {quarter}Mbit" in run(["tc", "class", "show", "dev", dev])
            leaves = netem_delays(dev)
            assert set(leaves) == set(CLASSES), leaves  # the loop below is over every class's leaf
            for leaf in leaves.values():
                assert f"rate {quarter}Mbit" in leaf["line"], leaf["line"]
    finally:
        run([TWIN, "link", "set", w.a, w.b, "--rate", f"{real / 1e9:g}Gbit"])
