"""The analytic model against the textbook formulas (../shared/REFERENCE.md)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traffic.collectives import PIPELINE_BYTES
from twin.model.costs import allreduce_time, busbw, hier_time
from twin.model.fabric import Fabric
from twin.model.iteration import (
    Iteration,
    buckets,
    efficiency_vs_single_site,
    iteration_time,
    predict,
)
from twin.spec.topology import FIBER_US_PER_KM

A, B, S = 20e-6, 100e9, 256 * 2**20  # alpha, bit/s, bytes


def one_site(p):
    return Fabric(sites=1, per_site=p, lan_bps=B, wan_bps=B, alpha_lan=A, alpha_wan=A)


@pytest.mark.parametrize("p", [2, 3, 8, 64])
def test_ring_matches_reference(p):
    """Chunks no larger than a pipeline piece: the textbook 2(p-1)(alpha + S/(pB))."""
    size = p * PIPELINE_BYTES / 2
    ref = 2 * (p - 1) * A + 2 * (p - 1) / p * size * 8 / B
    assert allreduce_time("ring", one_site(p), size) == pytest.approx(ref)


@pytest.mark.parametrize("p", [2, 3, 8])
def test_a_pipelined_ring_of_large_chunks_pays_one_latency(p):
    """Chunks of many pieces: each piece goes on as soon as it is added, so the link never
    waits a latency between steps: 2(p-1) chunks back to back, plus one latency."""
    ref = 2 * (p - 1) / p * S * 8 / B + A
    assert allreduce_time("ring", one_site(p), S) == pytest.approx(ref)


@pytest.mark.parametrize("p", [2, 4, 8, 1024])
def test_halving_doubling_matches_reference(p):
    ref = 2 * math.log2(p) * A + 2 * (p - 1) / p * S * 8 / B
    assert allreduce_time("hd", one_site(p), S) == pytest.approx(ref)


@pytest.mark.parametrize("k,m", [(8, 2), (4, 40), (1, 4), (16, 1)])
def test_hierarchical_matches_reference(k, m):
    a_l, a_w, b_l, b_w_rank = 5e-6, 9.8e-3, 400e9, 50e9
    f = Fabric(sites=m, per_site=k, lan_bps=b_l, wan_bps=b_w_rank * k, alpha_lan=a_l, alpha_wan=a_w)
    ref = (2 * (k - 1) * a_l + 2 * (k - 1) / k * S * 8 / b_l
           + (2 * (m - 1) * a_w + 2 * (m - 1) / m * (S / k) * 8 / b_w_rank if m > 1 else 0))
    assert hier_time(f, S) == pytest.approx(ref)


def test_single_rank_costs_nothing():
    for algo in ("ring", "hd", "tree", "hier"):
        assert allreduce_time(algo, one_site(1), S) == 0


def test_latency_bound_small_messages_prefer_fewer_wan_steps():
    f = Fabric(sites=4, per_site=8, lan_bps=400e9, wan_bps=400e9, alpha_lan=5e-6, alpha_wan=9.8e-3)
    small = 64 * 1024
    assert allreduce_time("hier", f, small) < allreduce_time("ring", f, small)


def test_busbw_of_ring_approaches_link_rate_for_large_messages():
    p = 8
    t = allreduce_time("ring", one_site(p), 16 * S)
    assert busbw(16 * S, t, p) == pytest.approx(B, rel=0.01)


def test_iteration_without_overlap_adds_all_communication():
    it = Iteration(forward=1.0, backward=2.0, optimizer=0.5, buckets=(10.0, 10.0, 10.0), overlap=False)
    pred = iteration_time(it, lambda b: 0.1 * b / 10)
    assert pred.iteration == pytest.approx(3.5 + 0.3)
    assert pred.exposed == pytest.approx(0.3)
    assert pred.efficiency == pytest.approx(3.5 / 3.8)


def test_overlap_hides_all_but_the_last_bucket_when_communication_is_fast():
    it = Iteration(forward=1.0, backward=2.0, optimizer=0.0, buckets=(1.0,) * 10, overlap=True)
    pred = iteration_time(it, lambda b: 0.05)
    assert pred.exposed == pytest.approx(0.05)  # only the last bucket sticks out


def test_overlap_cannot_hide_communication_longer_than_backward():
    it = Iteration(forward=0.0, backward=1.0, optimizer=0.0, buckets=(1.0,) * 4, overlap=True)
    pred = iteration_time(it, lambda b: 1.0)  # 4 s of communication, 1 s of backward
    assert pred.iteration == pytest.approx(0.25 + 4.0)


def test_buckets_sum_to_the_gradient():
    bs = buckets(350e9, 25 * 2**20)
    assert sum(bs) == pytest.approx(350e9)
    assert all(b <= 25 * 2**20 for b in bs)


@settings(deadline=None)  # a property of the model, not of its speed (40 sites x 16 ranks take a while)
@given(k=st.integers(1, 16), m=st.integers(1, 40), dist_km=st.floats(1, 3000),
       wan=st.floats(1e9, 3.2e12))
def test_spreading_never_beats_one_site_with_the_same_lan(k, m, dist_km, wan):
    f = Fabric(sites=m, per_site=k, lan_bps=400e9, wan_bps=wan, alpha_lan=5e-6,
               alpha_wan=dist_km * FIBER_US_PER_KM * 1e-6 + 5e-6)
    it = Iteration(forward=2.0, backward=4.0, optimizer=0.5, buckets=buckets(1e9, 25e6))
    eff, spread, single = efficiency_vs_single_site("hier", f, it)
    assert 0 < eff <= 1.0 + 1e-9


def test_fntf_like_full_scale_case_is_computable():
    """175B parameters in bf16 (350 GB of gradient), 2 sites 2,000 km apart."""
    f = Fabric(sites=2, per_site=512, lan_bps=400e9, wan_bps=1.2e12, alpha_lan=5e-6,
               alpha_wan=2000 * 1.3 * FIBER_US_PER_KM * 1e-6)
    it = Iteration(forward=5.0, backward=10.0, optimizer=1.0, buckets=buckets(350e9 / 512, 100e6))
    pred = predict("hier", f, it)
    assert pred.iteration > it.compute and 0 < pred.efficiency < 1


def test_ring_across_sites_pays_wan_latency_once_per_site_crossing():
    """4 ranks in 2 sites: a chunk's 6 hops cross the WAN 3 times (LAN, WAN, LAN, ...)."""
    a_l, a_w, bps, size = 2e-4, 15e-3, 100e6, 250_000
    f = Fabric(sites=2, per_site=2, lan_bps=bps, wan_bps=bps, alpha_lan=a_l, alpha_wan=a_w)
    x = size / 4 * 8 / bps
    assert allreduce_time("ring", f, size) == pytest.approx(3 * (a_w + x) + 3 * (a_l + x))


def test_ring_with_one_rank_per_site_is_lock_step_over_the_wan_for_small_chunks():
    f = Fabric(sites=8, per_site=1, lan_bps=B, wan_bps=B / 4, alpha_lan=A, alpha_wan=5e-3)
    size = 8 * PIPELINE_BYTES
    assert allreduce_time("ring", f, size) == pytest.approx(14 * (5e-3 + size / 8 * 8 / (B / 4)))


def test_ring_over_a_long_wan_pipelines_large_chunks():
    """One rank per site, 5 ms hops, 32 MiB chunks: a piece's chain of 14 hops plus the rest of
    a chunk (85 ms), or the busiest link's 14 chunks plus one latency (155 ms): the latter; the
    lock-step ring would take 14 x (5 ms + 10.7 ms) = 220 ms."""
    f = Fabric(sites=8, per_site=1, lan_bps=B, wan_bps=B / 4, alpha_lan=A, alpha_wan=5e-3)
    chunk, wan = S / 8 * 8 / (B / 4), B / 4
    piece = PIPELINE_BYTES * 8 / wan
    chain = 14 * (5e-3 + piece) + (chunk - piece)
    assert allreduce_time("ring", f, S) == pytest.approx(max(chain, 14 * chunk + 5e-3))
    assert allreduce_time("ring", f, S) < 0.75 * 14 * (5e-3 + chunk)


def test_ring_on_a_slow_wan_is_bound_by_the_wan_link_serial_work():
    a_l, a_w, size = 2e-4, 15e-3, 250_000
    f = Fabric(sites=2, per_site=2, lan_bps=100e6, wan_bps=25e6, alpha_lan=a_l, alpha_wan=a_w)
    assert allreduce_time("ring", f, size) == pytest.approx(6 * size / 4 * 8 / 25e6 + a_w)


def test_ring_over_many_sites_pays_each_hops_own_delay():
    """3 sites, one rank each, hops of 1, 2 and 3 ms: a chunk's 4 hops are one lap (6 ms) plus
    the longest next hop (3 ms), not 4 x the worst pair."""
    a_l, bps, size = 1e-4, 1e9, 3000
    x = size / 3 * 8 / bps
    f = Fabric(sites=3, per_site=1, lan_bps=bps, wan_bps=bps, alpha_lan=a_l, alpha_wan=3e-3 + a_l,
               ring_hop_delays=(1e-3, 2e-3, 3e-3))
    assert allreduce_time("ring", f, size) == pytest.approx(9e-3 + 4 * (a_l + x))
    lock_step = Fabric(3, 1, bps, bps, a_l, 3e-3 + a_l)
    assert allreduce_time("ring", lock_step, size) == pytest.approx(4 * (3e-3 + a_l + x))


def _line(order: list[int], bps: dict[tuple[int, int], float], d: float, frame: float = 0.0):
    """SitePaths of sites on a line in ``order``; each link ``d`` one way, its rate from ``bps``
    (keyed by the line's neighbours, both directions)."""
    from twin.model.fabric import SitePaths
    pos = {s: i for i, s in enumerate(order)}
    arcs, rates = {}, {}
    for (u, v), r in bps.items():
        rates[(u, v)] = rates[(v, u)] = r
    for a in order:
        for b in order:
            if a != b:
                step = 1 if pos[b] > pos[a] else -1
                line = [order[i] for i in range(pos[a], pos[b] + step, step)]
                arcs[(a, b)] = tuple(zip(line, line[1:]))
    return SitePaths(delay={k: d * len(v) for k, v in arcs.items()}, arcs=arcs, bps=rates,
                     frame_bytes=frame)


def test_tree_leaves_of_different_depths_send_at_once_and_share():
    """Four sites on a line D-C-A-B, one rank each (A=0, B=1, C=2, D=3; tree 1->0, 2->0, 3->1).
    Both leaves send when the bucket is there: C->A and D->C->A->B share C->A, each at half the
    rate, and B forwards only once D's piece is in. A level-by-level view (3->1 alone, then 1->0
    and 2->0 on disjoint links) misses that sharing: 4 transfers instead of 5."""
    from twin.model.costs import tree_time
    from twin.model.fabric import Fabric
    bps, d, a, size = 1e8, 0.005, 2e-4, 1 << 20
    paths = _line([3, 2, 0, 1], {(3, 2): bps, (2, 0): bps, (0, 1): bps}, d)
    f = Fabric(4, 1, 1e12, bps, a, a + 3 * d, (d, 3 * d, d, 3 * d), paths)
    x = size * 8 / bps
    # reduce: C->A and D->B share C->A (2x), then B->A (x); broadcast: A->B and A->C apart (x),
    # then B->D (x)
    assert tree_time(f, size) == pytest.approx((2 * x + a + 3 * d) + (x + a + d)
                                               + (x + a + d) + (x + a + 3 * d))
    # without the real topology the two-tier model sees no sharing at all
    two_tier = Fabric(4, 1, 1e12, bps, a, a + 3 * d)
    assert tree_time(two_tier, size) < tree_time(f, size)


def test_tree_pays_store_and_forward_on_every_hop_but_its_bottleneck():
    """Three sites on a line 0-1-2 (links 1-0 at 100 Mbit/s, 2-1 at 200 Mbit/s): 1->0 and
    2->1->0 share 1-0 (each 50 Mbit/s), and 2's last frame is serialized once more on 2-1."""
    from twin.model.costs import tree_time
    from twin.model.fabric import Fabric
    d, a, size, frame = 0.002, 2e-4, 1 << 20, 9000
    paths = _line([0, 1, 2], {(0, 1): 1e8, (1, 2): 2e8}, d, frame)
    f = Fabric(3, 1, 1e12, 1e8, a, a + 2 * d, (d, d, 2 * d), paths)
    phase = size * 8 / 5e7 + a + 2 * d + frame * 8 / 2e8
    assert tree_time(f, size) == pytest.approx(2 * phase)


def test_tree_buckets_back_to_back_start_when_each_rank_is_done():
    """Two buckets ready at once on the three-site line: the second starts at each rank when it
    is done with the first, so the pair takes no longer than two isolated all-reduces."""
    from twin.model import flows
    from twin.model.costs import tree_time
    from twin.model.fabric import Fabric
    d, a, size = 0.002, 2e-4, 1 << 18
    paths = _line([0, 1, 2], {(0, 1): 1e8, (1, 2): 2e8}, d, 9000)
    f = Fabric(3, 1, 1e12, 1e8, a, a + 2 * d, (d, d, 2 * d), paths)
    one = tree_time(f, size)
    two = flows.tree_sequence(f, [size, size], [0.0, 0.0])
    assert one < two <= 2 * one + 1e-12
    assert flows.tree_sequence(f, [size], [1.0]) == pytest.approx(1.0 + one)


def test_max_min_rates_fill_the_tightest_link_first():
    """Flows a (links x, y), b (x), c (y): x = 10 shared by a and b, y = 4 shared by a and c. y
    is tighter (2 each); a is then fixed at 2, b takes the 8 left on x."""
    from twin.model.flows import max_min_rates
    assert max_min_rates([("x", "y"), ("x",), ("y",)], {"x": 10.0, "y": 4.0}) == [2.0, 8.0, 2.0]


def test_weighted_rates_share_a_link_in_proportion_to_the_weights():
    from twin.model.flows import max_min_rates
    assert max_min_rates([("x",), ("x",)], {"x": 12.0}, [3.0, 1.0]) == [9.0, 3.0]
    # a is held to 2 by y; b takes what a leaves on x whatever the weights
    assert max_min_rates([("x", "y"), ("x",)], {"x": 12.0, "y": 2.0}, [1.0, 5.0]) == [2.0, 10.0]


def test_messages_sharing_a_nic_move_in_proportion_to_one_over_their_round_trip():
    """Rank 0 sends the same message to a rank of its own site (round trip 2 x 0.1 ms) and to one
    across the WAN (2 x 5 ms): TCP flows of equal windows share the NIC 50:1, so the same-site
    message is through first, the other then has the NIC alone (the sum is work-conserving)."""
    from twin.model import flows
    a_l, a_w, bps, n = 1e-4, 5e-3, 100e6, 1e6
    f = Fabric(sites=2, per_site=2, lan_bps=bps, wan_bps=bps, alpha_lan=a_l, alpha_wan=a_w)

    def sender():
        yield ("send", 1, n)
        yield ("send", 2, n)

    def receiver():
        yield ("recv", 0)

    def idle():
        yield from ()
    end = flows.run([sender(), receiver(), receiver(), idle()], flows.Network(f), window=4 * n)
    w_lan, w_wan = 1 / (2 * a_l), 1 / (2 * a_w)
    assert end[1] == pytest.approx(n * 8 / (bps * w_lan / (w_lan + w_wan)) + a_l)
    assert end[2] == pytest.approx(2 * n * 8 / bps + a_w)


def test_a_ring_hop_over_several_links_pays_store_and_forward_on_all_but_its_bottleneck():
    """Sites on a line 0-1-2 (0-1 at 100 Mbit/s, 1-2 at 25 Mbit/s), one rank each: the ring's
    hop 2->0 crosses both links, its last frame serialized at 25 Mbit/s (the fluid transfer's
    bottleneck) and once more at 100 Mbit/s; the one-link hops pay nothing extra. A message
    shorter than a frame pays its own length."""
    from twin.model.fabric import Fabric, ring_hops
    d, a, frame = 0.002, 2e-4, 9000
    paths = _line([0, 1, 2], {(0, 1): 1e8, (1, 2): 2.5e7}, d, frame)
    f = Fabric(3, 1, 1e12, 2.5e7, a, a + 2 * d, (d, d, 2 * d), paths)
    _, lat = ring_hops(f, 1 << 20)
    assert lat == pytest.approx([a + d, a + d, a + 2 * d + frame * 8 / 1e8])
    _, lat = ring_hops(f, 3000)
    assert lat[2] == pytest.approx(a + 2 * d + 3000 * 8 / 1e8)
    fluid = _line([0, 1, 2], {(0, 1): 1e8, (1, 2): 2.5e7}, d)  # no frame size: no store-and-forward
    no_frames = Fabric(3, 1, 1e12, 2.5e7, a, a + 2 * d, (d, d, 2 * d), fluid)
    assert ring_hops(no_frames, 1 << 20)[1] == pytest.approx([a + d, a + d, a + 2 * d])
