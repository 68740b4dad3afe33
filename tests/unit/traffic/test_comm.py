"""The transport's helpers: calls run together with their errors kept, and the rank options."""

from __future__ import annotations

import argparse
import json
import threading
import time

import pytest

from traffic.comm import CollectiveError, add_rank_arguments, concurrently, run_rank


def test_the_calls_run_at_the_same_time_and_the_first_in_this_thread():
    met = threading.Barrier(3, timeout=5)  # breaks unless all three wait at once
    where: dict[str, int] = {}

    def call(name: str):
        def run() -> None:
            where[name] = threading.get_ident()
            met.wait()
        return run
    concurrently(call("a"), call("b"), call("c"))
    assert where["a"] == threading.get_ident()
    assert len(set(where.values())) == 3


def test_an_error_in_another_thread_is_raised_here_after_every_call_ended():
    ended = []

    def slow() -> None:
        time.sleep(0.3)
        ended.append("slow")

    def failing() -> None:
        raise CollectiveError("rank 1: ring step 1/3: send to rank 2 failed: timed out")
    with pytest.raises(CollectiveError, match="send to rank 2"):
        concurrently(slow, failing)
    assert ended == ["slow"]


def test_the_first_calls_own_error_wins_and_waits_for_the_others():
    ended = []

    def other() -> None:
        time.sleep(0.2)
        ended.append("other")
        raise ValueError("later")

    def first() -> None:
        raise CollectiveError("receive from rank 0 failed")
    with pytest.raises(CollectiveError, match="receive from rank 0"):
        concurrently(first, other)
    assert ended == ["other"]


def test_any_exception_of_a_thread_is_kept_not_only_collective_errors():
    def broken() -> None:
        raise TypeError("memoryview: casts are restricted to C-contiguous views")
    with pytest.raises(TypeError, match="C-contiguous"):
        concurrently(lambda: None, broken)


def test_nothing_to_run():
    concurrently()


def test_rank_options_and_their_defaults():
    ap = argparse.ArgumentParser()
    add_rank_arguments(ap, port=29600, timeout=60.0)
    a = ap.parse_args(["--rank", "1", "--ranks", "[]"])
    assert (a.rank, a.ranks, a.conns, a.port, a.timeout) == (1, "[]", 1, 29600, 60.0)
    with pytest.raises(SystemExit):
        ap.parse_args(["--ranks", "[]"])  # --rank is required


def test_a_rank_that_cannot_start_prints_one_json_error_line(capsys):
    ap = argparse.ArgumentParser()
    add_rank_arguments(ap, port=29600, timeout=1.0)
    a = ap.parse_args(["--rank", "0", "--ranks", json.dumps([{"rank": 0, "ip": "127.0.0.1"}])])
    assert run_rank(a, lambda comm: None) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "site" in json.loads(lines[0])["error"]


def test_a_single_rank_runs_its_body():
    ap = argparse.ArgumentParser()
    add_rank_arguments(ap, port=29600, timeout=1.0)
    a = ap.parse_args(["--rank", "0", "--ranks",
                       json.dumps([{"rank": 0, "ip": "127.0.0.1", "site": "s"}])])
    seen = []
    assert run_rank(a, lambda comm: seen.append(comm.size)) == 0
    assert seen == [1]
