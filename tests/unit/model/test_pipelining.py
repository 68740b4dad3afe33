"""Back-to-back all-reduces in the model: the per-rank recursion and its periodic shortcut."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.model import pipelining
from twin.model.costs import allreduce_time, hier_time, ring_time
from twin.model.fabric import Fabric
from twin.model.iteration import Iteration, predict

A_L, A_W = 2e-4, 10e-3


def two_sites(lan=100e6, wan=100e6, k=2, m=2) -> Fabric:
    return Fabric(sites=m, per_site=k, lan_bps=lan, wan_bps=wan, alpha_lan=A_L, alpha_wan=A_W)


def test_one_ring_bucket_is_the_longest_chain():
    """4 ranks in 2 sites, latency-bound: every chunk crosses the WAN 3 times in its 6 hops."""
    f, size = two_sites(), 250_000
    x = size / 4 * 8 / 100e6
    alone = pipelining.sequence_finish("ring", f, [size], [0.0])
    assert alone == pytest.approx(3 * (A_W + x) + 3 * (A_L + x))
    assert alone == pytest.approx(ring_time(f, size))


def test_one_hierarchical_bucket_matches_the_closed_form():
    f, size = two_sites(wan=25e6), 250_000
    assert pipelining.sequence_finish("hier", f, [size], [0.0]) == pytest.approx(hier_time(f, size))


def test_back_to_back_buckets_overlap_but_never_beat_the_wan_links_serial_work():
    """On a 25 Mbit/s WAN a rank that is done sends its first chunk of the next bucket while the
    last chunks of this one still cross: less than the sum, more than the WAN's own work."""
    f, size, n = two_sites(wan=25e6), 250_000, 8
    seq = pipelining.sequence_finish("ring", f, [size] * n, [0.0] * n)
    wan_work = n * 2 * (f.ranks - 1) * size / f.ranks * 8 / 25e6
    assert wan_work < seq < n * ring_time(f, size) * 0.99


def test_a_bucket_that_waits_for_its_gradient_runs_as_if_alone():
    f, size = two_sites(), 250_000
    late = 5.0  # the fabric is idle long before
    assert pipelining.sequence_finish("ring", f, [size, size], [0.0, late]) == pytest.approx(
        late + ring_time(f, size))


def uncached(op, f, size, cache):
    free = np.zeros(f.ranks)
    return op(f, size, np.zeros(f.ranks), free), free


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 6), m=st.integers(1, 5), algo=st.sampled_from(["ring", "hier"]),
       wan=st.sampled_from([10e6, 25e6, 100e6, 400e6]), delay=st.floats(0.0, 0.03),
       n=st.integers(1, 30), overlap=st.booleans())
def test_the_periodic_shortcut_is_exact(k, m, algo, wan, delay, n, overlap):
    f = Fabric(sites=m, per_site=k, lan_bps=100e6, wan_bps=wan, alpha_lan=A_L,
               alpha_wan=delay + A_L)
    sizes = [200_000.0] * (n - 1) + [50_000.0]  # a smaller last bucket, as DDP makes
    ready = [0.1 + 0.01 * j if overlap else 0.5 for j in range(n)]
    fast = pipelining.sequence_finish(algo, f, sizes, ready)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipelining, "_period", lambda run: None)
        mp.setattr(pipelining, "_alone", uncached)
        slow = pipelining.sequence_finish(algo, f, sizes, ready)
    assert fast == pytest.approx(slow, rel=1e-9)


def test_iteration_prediction_uses_the_pipelined_sequence_for_ring_and_hier():
    f = two_sites(wan=25e6)
    it = Iteration(0.2, 0.4, 0.05, tuple([250_000.0] * 8), overlap=False)
    for algo in ("ring", "hier"):
        pred = predict(algo, f, it)
        serial = 0.6 + sum(allreduce_time(algo, f, b) for b in it.buckets) + 0.05
        assert pred.iteration <= serial + 1e-12
        assert pred.communication == pytest.approx(sum(allreduce_time(algo, f, b)
                                                       for b in it.buckets))


def test_many_identical_buckets_are_extrapolated_not_simulated():
    """219 buckets of a 175B model's data-parallel gradient: the regime is periodic after a few
    buckets (cyclicity 4 with 8 ranks per site), so only those few are simulated."""
    f = Fabric(sites=40, per_site=8, lan_bps=400e9, wan_bps=400e9, alpha_lan=1e-5, alpha_wan=0.01)
    calls = []

    def counted(*args):
        calls.append(1)
        return pipelining._ring_op(*args)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(pipelining.OPS, "ring", counted)
        pipelining.sequence_finish("ring", f, [25e6] * 219, [1.0] * 219)
    assert len(calls) < 12
