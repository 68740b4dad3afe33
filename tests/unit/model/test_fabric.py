"""The analytic fabric of a topology, and its single-site reference."""

from dataclasses import replace

import pytest

from tests.locations import TOPOS
from twin.model import pipelining
from twin.model.costs import allreduce_time, hier_time
from twin.model.fabric import fabric_from_topology
from twin.model.iteration import Iteration, best_single_site
from twin.spec.topology import load_topology

S = 4_000_000  # bytes


def ci2site():
    return fabric_from_topology(load_topology(TOPOS / "ci-2site.yaml"))


def test_the_spread_ring_pays_the_wan_propagation_once_per_crossing():
    """ci-2site's ring of 4 ranks crosses the WAN at hops 1 and 3: a chunk's 6 hops cross it 3
    times, so the spread ring costs the single site's plus 3 one-way delays."""
    f = ci2site()
    d = f.ring_hop_delays[1]
    assert f.ring_hop_delays == (0.0, d, 0.0, d) and d > 6e-3
    assert allreduce_time("ring", f, S) == pytest.approx(allreduce_time("ring", f.single_site(), S) + 3 * d)


@pytest.mark.parametrize("name", ["ci-2site", "fntf-4site"])
def test_a_single_site_pays_no_propagation(name):
    """The single data centre is the same ranks on the LAN: every ring step is alpha_lan plus a
    chunk at the NIC rate, whatever the WAN's hops cost in the spread fabric."""
    f = fabric_from_topology(load_topology(TOPOS / f"{name}.yaml"))
    one = f.single_site()
    p, lan, a_l = f.ranks, f.lan_bps, f.alpha_lan
    assert one.ranks == p and one.lan_bps == lan
    textbook = 2 * (p - 1) * (a_l + S / p * 8 / lan)
    assert allreduce_time("ring", one, S) == pytest.approx(textbook)
    assert pipelining.sequence_finish("ring", one, [S], [0.0]) == pytest.approx(textbook)
    assert pipelining.sequence_finish("hier", one, [S], [0.0]) == pytest.approx(hier_time(one, S))


def test_the_single_site_reference_is_the_same_with_or_without_the_hop_delays():
    f = ci2site()
    it = Iteration(0.05, 0.1, 0.01, (S,) * 4)
    with_hops = best_single_site(f, it)
    without = best_single_site(replace(f, ring_hop_delays=()), it)
    assert with_hops[0] == without[0]
    assert with_hops[1].iteration == pytest.approx(without[1].iteration)
