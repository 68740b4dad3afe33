"""``--sndbuf``: one window for every connection, or one per pair of sites."""

from __future__ import annotations

import argparse

import pytest

from traffic.comm import Comm, RankInfo, send_windows


def test_a_number_or_an_object_of_numbers():
    assert send_windows("0") == 0 and send_windows("1048576") == 1 << 20
    assert send_windows('{"a>b": 5, "a>a": 7}') == {"a>b": 5, "a>a": 7}
    for bad in ("-1", '{"a>b": -2}', '{"a>b": "x"}', "[1]", "nope"):
        with pytest.raises((argparse.ArgumentTypeError, ValueError)):
            send_windows(bad)


def test_a_connection_takes_the_window_of_its_pair_of_sites():
    comm = Comm(0, [RankInfo(0, "127.0.0.1", "a")], sndbuf={"a>a": 7, "a>b": 5})
    assert comm.window(0) == 7
    comm.ranks = [RankInfo(0, "127.0.0.1", "a"), RankInfo(1, "127.0.0.2", "b"), RankInfo(2, "127.0.0.3", "c")]
    assert comm.window(1) == 5 and comm.window(2) == 0  # no window given: the kernel's autotuning
    assert Comm(0, [RankInfo(0, "127.0.0.1", "a")], sndbuf=9).window(0) == 9
