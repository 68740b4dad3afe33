"""A failed rank in one line: the rank's own JSON error, else the last line it wrote to stderr."""

from __future__ import annotations

import json

from twin.drive.ranks import rank_error


def test_the_ranks_json_error_names_the_worker():
    out = '{"size": 4}\n' + json.dumps({"error": "rank 2: ring step 1/3: receive from rank 1 "
                                                 "failed: timed out"}) + "\n"
    assert rank_error(out, "", 2, "wuhan1", 1) == (
        "rank 2: ring step 1/3: receive from rank 1 failed: timed out (worker wuhan1)")


def test_without_one_the_last_stderr_line_and_the_status():
    err = "Traceback (most recent call last):\n  ...\nMemoryError\n"
    assert rank_error("", err, 3, "wuhan2", 1) == (
        "rank 3 (worker wuhan2) exited with status 1: MemoryError")


def test_a_killed_rank_that_wrote_nothing():
    assert rank_error("", "", 0, "beijing1", 137) == (
        "rank 0 (worker beijing1) exited with status 137: exit status 137")


def _state(delay_s: float, emulated_bps: float, queue_bytes: int, dilation: float = 1.0,
           site_bps: float = 400e6):
    from twin.emulation.state import TwinState, WanInfo, WorkerInfo
    return TwinState(run_id="r1", topology="ci-2site", topology_file="t.yaml", mechanism="delayline",
                     datapath="user", controller="none", scale="x", owner_pid=1, started=1.5,
                     mtu=9000,
                     workers=[WorkerInfo("beijing1", "beijing", 1, "10.1.0.1", "m", "tw1", 1)],
                     wan=[WanInfo("beijing", "wuhan", "tw1", "tw2", 3, 3, "i1", "i2", 1368.0,
                                  delay_s, 0.0, 0.0, 4e11, emulated_bps, queue_bytes)],
                     site_bps={"beijing": site_bps, "wuhan": site_bps},
                     site_delay_s={"beijing": 0.0, "wuhan": 0.0},
                     dilation=dilation)


def test_a_cross_site_window_holds_its_path_the_bottlenecks_queue_and_the_way_back():
    from twin.drive.ranks import send_windows
    from twin.emulation.tc import default_queue_bytes
    lan = default_queue_bytes(9000)
    # 400 Mbit/s, 6.7 ms one way: 670,000 B in flight over a round trip, plus its 670 KB queue,
    # plus the acknowledgements' way back: wuhan's worker link, the WAN, beijing's worker link,
    # all at the bottleneck's rate
    w = send_windows(_state(0.0067, 400e6, 670_000))
    assert w["beijing>wuhan"] == w["wuhan>beijing"] == int(400e6 * 0.0134 / 8 + 670_000
                                                           + lan + 670_000 + lan)
    # 10,000 km: a round trip of 98 ms at 400 Mbit/s holds 4.9 MB
    assert send_windows(_state(0.049, 400e6, 670_000))["beijing>wuhan"] == int(
        400e6 * 0.098 / 8 + 670_000 + 2 * lan + 670_000)
    # dilated K times: the rate / K and the delay x K leave the bytes in flight as they were
    # (inside a site the round trip is the host's own, which dilation does not stretch)
    dilated = send_windows(_state(0.049, 400e6, 670_000, dilation=4))
    assert dilated["beijing>wuhan"] == send_windows(_state(0.049, 400e6, 670_000))["beijing>wuhan"]


def test_the_way_back_counts_each_queue_for_the_time_it_holds_at_the_bottlenecks_rate():
    from twin.drive.ranks import send_windows
    from twin.emulation.tc import default_queue_bytes
    lan = default_queue_bytes(9000)
    # a 100 Mbit/s WAN behind 400 Mbit/s worker links: a worker link's queue drains 4x faster,
    # so it holds a quarter of its bytes' worth of the WAN's time
    w = send_windows(_state(0.0067, 100e6, 670_000))
    assert w["beijing>wuhan"] == int(100e6 * 0.0134 / 8 + 670_000 + 670_000 + 2 * lan * 100e6 / 400e6)


def test_a_worker_link_slower_than_the_wan_is_the_bottleneck_and_its_queue_the_limit():
    from twin.drive.ranks import send_windows
    from twin.emulation.tc import default_queue_bytes
    lan = default_queue_bytes(9000)
    w = send_windows(_state(0.0067, 400e6, 670_000, site_bps=100e6))
    assert w["beijing>wuhan"] == int(100e6 * 0.0134 / 8 + lan + 2 * lan + 670_000 * 100e6 / 400e6)


def test_a_same_site_window_is_the_worker_links_queue_and_its_short_round_trip():
    """Not the WAN's: a same-site ring hop with the WAN path's 1.3 MB window overran the 64
    frames a worker link queues."""
    from twin.drive.ranks import LAN_RTT_S, send_windows
    from twin.emulation.tc import default_queue_bytes
    w = send_windows(_state(0.0067, 400e6, 670_000))
    assert w["beijing>beijing"] == int(400e6 * LAN_RTT_S / 8 + default_queue_bytes(9000))
    assert w["beijing>beijing"] < w["beijing>wuhan"]
