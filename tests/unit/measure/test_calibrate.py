"""Calibration arithmetic and the parsers of ping and iperf3 output."""

import json

import pytest

from tests.locations import DATA
from twin.drive.crosstraffic import parse_iperf3
from twin.measure.calibrate import path_properties
from twin.measure.ping import parse_ping_rtts
from twin.plan.graph import fabric_graph


def test_ping_rtts_from_real_output():
    assert parse_ping_rtts((DATA / "ping-3.txt").read_text()) == [0.199, 0.051, 0.054]


def test_iperf3_json_from_real_output():
    bps, retrans = parse_iperf3((DATA / "iperf3-client.json").read_text())
    raw = json.loads((DATA / "iperf3-client.json").read_text())
    assert bps == raw["end"]["sum_received"]["bits_per_second"] and bps > 0
    assert retrans == raw["end"]["sum_sent"]["retransmits"]


def test_iperf3_error_is_raised():
    with pytest.raises(RuntimeError, match="unable to connect"):
        parse_iperf3(json.dumps({"error": "unable to connect to server"}))


def test_path_properties_sum_delays_and_take_bottleneck():
    g = fabric_graph([{"a": "a", "b": "b", "delay_s": 0.005, "emulated_bps": 400e6},
                      {"a": "b", "b": "c", "delay_s": 0.004, "emulated_bps": 100e6},
                      {"a": "a", "b": "c", "delay_s": 0.020, "emulated_bps": 1e9}])
    fabric = {s: (1e-6, 400e6) for s in "abc"}
    delay, rate, hops = path_properties(g, "a", "c", fabric)
    assert hops == 2
    assert delay == pytest.approx(0.009 + 2e-6)
    assert rate == 100e6
