"""Delay compensation on a live twin (ci-2site as shipped: compensation on): bring-up measured
the host's floor and took it out of the delay stage, `twin inspect` shows it, and no delay is
ever made negative, also on a link set shorter than the floor."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from tests.integration.machine import early_ms, ns_run
from tests.locations import ROOT
from twin.emulation import runtime
from twin.emulation.compensation import configured_one_hop_rtt_s
from twin.measure.ping import parse_ping_rtts


def pings(state, count: int = 40) -> list[float]:
    src, dst = state.worker("beijing1"), state.worker("wuhan1")
    out = ns_run(src.pid, ["ping", "-n", "-c", str(count), "-i", "0.02", dst.ip]).stdout
    return parse_ping_rtts(out)[3:]  # the first frames: ARP and the switches' caches


def test_bring_up_measured_the_floor_and_took_it_out(ci2site):
    topo, state = ci2site
    assert state.compensated and topo.delay_compensation
    (w,) = state.wan
    assert w.floor_rtt_s is not None and 0 < w.floor_rtt_s < 0.01  # host time, a few 0.1 ms here
    assert w.comp_first_s >= 0 and w.comp_transit_ab_s >= 0 and w.comp_transit_ba_s >= 0
    assert w.measured_rtt_s is not None
    cfg_ms = configured_one_hop_rtt_s(state, w, state.site_delay_s) * 1e3
    rtts = pings(state)
    # the delay stage holds the configured delay less the compensation, never less
    assert min(rtts) >= cfg_ms - early_ms(state, ["beijing", "wuhan"], round_trip=True), rtts
    # taken out: the round trip is nearer the configured one than the floor left it
    assert statistics.median(rtts) - cfg_ms < w.floor_rtt_s * 1e3, (rtts, w.floor_rtt_s)


def test_inspect_shows_configured_floor_compensation_and_measured(ci2site):
    _, state = ci2site
    (w,) = state.wan
    out = subprocess.run([sys.executable, "-m", "twin.cli.main", "inspect"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
                         cwd=ROOT).stdout
    assert "delay compensation (one-hop round trips)" in out and ": off" not in out, out
    assert f"{w.floor_rtt_s * 1e3:.3f} ms" in out and f"{2 * w.comp_first_s * 1e3:.3f} ms" in out, out


def test_a_link_shorter_than_the_floor_is_as_short_as_the_machine_makes_it(ci2site):
    topo, state = ci2site
    (w,) = state.wan
    try:
        runtime.set_link("beijing", "wuhan", delay_s=w.comp_first_s / 4)
        now = runtime.require_state()
        assert now.wan[0].floor_exceeds_delay(now.time)
        out = subprocess.run([sys.executable, "-m", "twin.cli.main", "inspect"], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
                             cwd=ROOT).stdout
        assert "floor exceeds the fiber" in out, out
        rtts = pings(now, count=20)
        # the hold is zero, not negative (which a delay stage would wrap into a very long hold or
        # drop): every frame crosses, about as fast as with the delay stages at zero at bring-up
        floor_ms = w.floor_rtt_s * 1e3
        assert len(rtts) == 17 and statistics.median(rtts) < floor_ms + 1.0, (rtts, floor_ms)
    finally:
        runtime.set_link("beijing", "wuhan", delay_s=topo.link_delay(topo.links[0]))
