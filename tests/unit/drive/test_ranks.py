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


def _state(delay_s: float, emulated_bps: float, queue_bytes: int, dilation: float = 1.0):
    from twin.emulation.state import TwinState, WanInfo, WorkerInfo
    return TwinState(run_id="r1", topology="ci-2site", topology_file="t.yaml", mechanism="delayline",
                     datapath="user", controller="none", scale="x", owner_pid=1, started=1.5,
                     workers=[WorkerInfo("beijing1", "beijing", 1, "10.1.0.1", "m", "tw1", 1)],
                     wan=[WanInfo("beijing", "wuhan", "tw1", "tw2", 3, 3, "i1", "i2", 1368.0,
                                  delay_s, 0.0, 0.0, 4e11, emulated_bps, queue_bytes)],
                     dilation=dilation)


def test_the_send_window_holds_the_longest_path_and_its_queue():
    from traffic.collectives import PIPELINE_BYTES
    from twin.drive.ranks import send_window
    # 400 Mbit/s, 6.7 ms one way: 670,000 B in flight over a round trip, plus its 670 KB queue
    assert send_window(_state(0.0067, 400e6, 670_000)) == 2 * PIPELINE_BYTES  # the floor
    # 10,000 km: a round trip of 98 ms at 400 Mbit/s holds 4.9 MB, more than two pieces
    assert send_window(_state(0.049, 400e6, 670_000)) == int(400e6 * 0.098 / 8 + 670_000)
    # dilated K times: the rate / K and the delay x K leave the bytes in flight as they were
    assert send_window(_state(0.049, 400e6, 670_000, dilation=4)) == \
        send_window(_state(0.049, 400e6, 670_000))
