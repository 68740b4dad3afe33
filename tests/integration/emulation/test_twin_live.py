"""ci-2site brought up for real: RTT, rate, probes, live link changes, cut/restore, teardown."""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time

import pytest

from tests.integration.machine import early_ms, ns_run
from tests.locations import ROOT
from twin.emulation import runtime
from twin.errors import TwinError
from twin.measure.iperf import iperf
from twin.measure.ping import parse_ping_rtts

TWIN = str(ROOT / ".venv" / "bin" / "twin")


def worker(state, name):
    return state.worker(name)


def ping_rtts(state, src, dst, count=40, interval=0.02):
    s, d = worker(state, src), worker(state, dst)
    out = ns_run(s.pid, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", d.ip])
    return parse_ping_rtts(out.stdout)


def configured_rtt_ms(topo):
    return 2 * topo.link_delay(topo.links[0]) * 1e3


def test_cross_site_rtt_follows_the_fiber_distance(ci2site):
    topo, state = ci2site
    rtts = ping_rtts(state, "beijing1", "wuhan1")
    cfg = configured_rtt_ms(topo)
    assert len(rtts) >= 38
    early = early_ms(state, ["beijing", "wuhan"], round_trip=True)
    assert min(rtts) >= cfg - early, "packets arrived faster than light in fiber"
    # the switching fabric adds 0.4-1.0 ms here (measured by the benchmarks, not asserted)
    assert statistics.median(rtts) <= cfg + 1.5


def test_intra_site_traffic_does_not_cross_the_delay_line(ci2site):
    topo, state = ci2site
    rtts = ping_rtts(state, "beijing1", "beijing2", count=20)
    assert len(rtts) == 20 and statistics.median(rtts) < 1.0


def test_tcp_throughput_is_shaped_to_the_emulated_rate(ci2site):
    topo, state = ci2site
    rate = topo.emulated_rate(topo.links[0].rate)
    bps, _ = iperf(worker(state, "beijing1"), worker(state, "wuhan2"), seconds=4)
    assert bps <= rate * 1.01, "the link carried more than its configured rate"
    assert bps >= rate * 0.85, f"TCP only reached {bps / 1e6:.0f} Mbit/s of {rate / 1e6:.0f}"


def test_live_rate_change_reshapes_the_link(ci2site):
    """`twin link set --rate`: the real rate is scaled like the topology's (the scale must be read
    before the new real rate replaces the old, or the emulated rate would not change)."""
    topo, state = ci2site
    real = topo.links[0].rate
    rate = topo.emulated_rate(real)
    w = runtime.set_link("beijing", "wuhan", rate_bps=real / 2)
    try:
        assert w.emulated_bps == rate / 2
        bps, _ = iperf(worker(state, "beijing1"), worker(state, "wuhan2"), seconds=4)
        assert rate / 2 * 0.85 <= bps <= rate / 2 * 1.01, f"{bps / 1e6:.1f} Mbit/s"
    finally:
        runtime.set_link("beijing", "wuhan", rate_bps=real)
    assert runtime.find_wan(runtime.load_state(), "beijing", "wuhan").emulated_bps == rate


def test_worker_probe_sees_one_way_delay_in_order(ci2site):
    """Worker-side code inside the containers: one-way delay >= propagation, no reordering."""
    topo, state = ci2site
    rx, tx = worker(state, "wuhan1"), worker(state, "beijing1")
    box = {}

    def recv():
        box["out"] = subprocess.run(
            ["docker", "exec", rx.container, "python3", "-m", "traffic.probe", "recv",
             "--port", "7100", "--duration", "15", "--expect", "1000"],
            capture_output=True, text=True, timeout=60).stdout
    t = threading.Thread(target=recv)
    t.start()
    time.sleep(1.0)
    subprocess.run(["docker", "exec", tx.container, "python3", "-m", "traffic.probe", "send",
                    "--dst", rx.ip, "--port", "7100", "--pps", "1000", "--count", "1000"],
                   check=True, capture_output=True, timeout=60)
    t.join()
    stats = json.loads(box["out"])
    one_way = topo.link_delay(topo.links[0]) * 1e3
    assert stats["received"] == 1000 and stats["loss"] == 0
    assert stats["reordered"] == 0
    assert stats["owd_min_ms"] >= one_way - early_ms(state, ["beijing", "wuhan"])
    assert stats["owd_p50_ms"] <= one_way + 1.5


def test_live_delay_change_and_link_cut(ci2site):
    topo, state = ci2site
    runtime.set_link("beijing", "wuhan", delay_s=0.010)
    try:
        rtts = ping_rtts(state, "beijing1", "wuhan1", count=20)
        early = early_ms(state, ["beijing", "wuhan"], round_trip=True)
        assert min(rtts) >= 20 - early and statistics.median(rtts) <= 21.5
        runtime.set_link_state("beijing", "wuhan", up_=False)
        assert ping_rtts(state, "beijing1", "wuhan1", count=5, interval=0.2) == []
        runtime.set_link_state("beijing", "wuhan", up_=True)
        time.sleep(0.5)
        assert len(ping_rtts(state, "beijing1", "wuhan1", count=5, interval=0.1)) >= 4
    finally:
        runtime.set_link_state("beijing", "wuhan", up_=True)
        runtime.set_link("beijing", "wuhan", delay_s=topo.link_delay(topo.links[0]))


def test_a_mid_span_cut_stays_until_restored_whatever_the_link_is_set_to(ci2site):
    topo, state = ci2site
    try:
        runtime.set_link_span("beijing", "wuhan", up_=False)
        assert ping_rtts(state, "beijing1", "wuhan1", count=5, interval=0.1) == []
        runtime.set_link("beijing", "wuhan", delay_s=0.010)  # a change during the cut
        assert ping_rtts(state, "beijing1", "wuhan1", count=5, interval=0.1) == []
        problems = runtime.health(runtime.require_state())
        assert any("beijing-wuhan is cut mid-span" in p for p in problems), problems
        runtime.set_link_span("beijing", "wuhan", up_=True)
        rtts = ping_rtts(state, "beijing1", "wuhan1", count=20)
        early = early_ms(state, ["beijing", "wuhan"], round_trip=True)
        # restored with the delay set during the cut
        assert len(rtts) >= 19 and min(rtts) >= 20 - early and statistics.median(rtts) <= 21.5
        assert not any("mid-span" in p for p in runtime.health(runtime.require_state()))
    finally:
        runtime.set_link_span("beijing", "wuhan", up_=True)
        runtime.set_link("beijing", "wuhan", delay_s=topo.link_delay(topo.links[0]))


def test_second_twin_is_refused(ci2site):
    topo, _ = ci2site
    with pytest.raises(TwinError, match="already running"):
        runtime.up(topo, "x", "none", progress=lambda s: None)


def test_cli_inspect_and_exec(ci2site):
    _, state = ci2site
    env = {"COLUMNS": "220", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    out = subprocess.run([TWIN, "inspect"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "beijing-wuhan" in out.stdout
    assert ("delay line pid" if state.mechanism == "delayline" else "netem") in out.stdout
    assert "DEAD" not in out.stdout
    out = subprocess.run([TWIN, "exec", "wuhan2", "--", "python3", "-c", "import socket;print(socket.gethostname())"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert out.returncode == 0 and out.stdout.strip() == "wuhan2"
    out = subprocess.run([TWIN, "exec", "paris1", "--", "true"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 1 and "no worker named 'paris1'" in out.stderr
