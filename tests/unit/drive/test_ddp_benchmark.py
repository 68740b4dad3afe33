"""benchmarks/ddp.py: the layouts it brings up, the floor of an all-reduce across the WAN, and a
row per layout that says what was emulated and whether the host was the bottleneck."""

import importlib.util

import pytest

from tests.locations import ROOT, TOPOS
from tests.unit.drive.test_ddp import result
from twin.drive.ddp import DdpConfig, combine, replay_schedule
from twin.spec.topology import load_topology, single_site

spec = importlib.util.spec_from_file_location("ddp_benchmark", ROOT / "benchmarks" / "ddp.py")
assert spec and spec.loader
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_every_wan_link_gets_the_distance_and_the_delay_that_follows_from_it():
    topo = bench.at_distance(load_topology(TOPOS / "ci-2site.yaml"), 10000)
    (link,) = topo.links
    assert topo.link_distance_km(link) == 10000
    assert topo.link_delay(link) == pytest.approx(0.049)  # 4.9 us per km of fiber


@pytest.mark.parametrize("nbytes, ranks, segment", [
    (4198400, 4, 524800),  # DDP's 4.2 MB bucket on 4 ranks: 8 segments (at least 2 per rank)
    (16793600, 4, 839680),  # the whole gradient: 17 segments of 1 MiB, rounded up to 20
    (64 * 2**20, 4, 2**20),  # 64 of 1 MiB, already a multiple of the ranks
    (10, 4, 4),  # whole elements
])
def test_gloos_ring_segments_are_at_most_1_mib_and_at_least_two_per_rank(nbytes, ranks, segment):
    assert bench.gloo_segment_bytes(nbytes, ranks) == segment


def test_the_wan_floor_is_one_way_delay_plus_the_gradient_at_the_slowest_link():
    topo = bench.at_distance(load_topology(TOPOS / "ci-2site.yaml"), 1000)  # 400 Mbit/s at 1/1000
    assert bench.wan_floor_s(topo, 50_000_000) == pytest.approx(0.0049 + 1.0)
    assert bench.wan_floor_s(single_site(topo), 50_000_000) == 0.0


def test_a_row_says_what_was_emulated_the_three_times_and_the_host_load():
    topo = bench.at_distance(load_topology(TOPOS / "ci-2site.yaml"), 4000)
    run = combine([result(0, [0.50, 0.60, 0.55]), result(1, [0.52, 0.58, 0.50])], 0.05, False)
    sched = replay_schedule(run)
    r = bench.row(topo, 4000, run, sched, 0.50, 0.2, True, 0.44, DdpConfig(), 0.001, "delayline",
                  "abc1234", {"gloo_allreduce_bucket_s": 0.1})
    assert (r["layout"], r["distance_km"], r["one_way_delay_ms"], r["wan_mbps_emulated"]) == (
        "spread", 4000, 19.6, 400.0)
    assert r["gradient_bytes_real_equivalent"] == 4202496000 and r["buckets"] == 4
    assert r["ddp_iteration_s"] == 0.55  # the median of the slowest ranks' 0.52, 0.60, 0.55
    assert r["ddp_vs_replay"] == pytest.approx(0.10)
    assert r["ddp_vs_model"] == pytest.approx(0.55 / 0.44 - 1, abs=1e-4)
    assert (r["ddp_host_bound"], r["replay_host_bound"]) == (False, True)
    assert r["scale"] == "bandwidth x0.001 (1/1000); delays real"
    assert r["gloo_segment_bytes"] == 1050624 // 4  # 2 ranks: at least 4 segments of a bucket
    assert r["gloo_window_mbps"] == pytest.approx(2 * 262656 * 8 / 0.0392 / 1e6, abs=0.1)
    assert r["gloo_allreduce_bucket_s"] == 0.1 and r["git_commit"] == "abc1234"


def test_the_plot_is_written(tmp_path):
    topo = load_topology(TOPOS / "ci-2site.yaml")
    run = combine([result(0, [0.5, 0.6])])
    sched = replay_schedule(run)
    rows = [bench.row(t, km, run, sched, 0.5, 0.0, False, 0.45, DdpConfig(), 0.001, "delayline", "x", {})
            for km, t in ((None, single_site(topo)), (1000, bench.at_distance(topo, 1000)))]
    out = bench.plot(rows, tmp_path / "ddp.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
