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
