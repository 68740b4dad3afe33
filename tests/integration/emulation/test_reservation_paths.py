"""detpath forwards each reservation on the path admission placed it on, in its own classes, and
fails it over onto its own backup path: two reservations between the same two sites, the direct
link with room for only one of them, the other sent round a detour."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

from tests.integration.machine import early_ms
from tests.locations import ROOT
from twin.drive.crosstraffic import start_probe
from twin.emulation import runtime
from twin.emulation.state import TwinState
from twin.host.processes import WORKLOAD_ENV, ns_prefix
from twin.plan.addressing import worker_intf_name
from twin.plan.routing import RESERVABLE
from twin.spec.topology import load_topology

DIRECT_MS, DETOUR_LEG_MS = 2.0, 5.0
TOPOLOGY = f"""\
name: detour
description: x and y 2 ms apart, and 10 ms round through z; the direct link has room for one
scale:
  bandwidth: 1/4000
sites:
  - {{name: x, lat: 40.0, lon: 116.0, workers: 1, fabric: {{rate: 400Gbit}}}}
  - {{name: y, lat: 40.5, lon: 116.0, workers: 1, fabric: {{rate: 400Gbit}}}}
  - {{name: z, lat: 41.0, lon: 118.0, workers: 1, fabric: {{rate: 400Gbit}}}}
links:
  - {{a: x, b: y, rate: 400Gbit, delay: {DIRECT_MS}ms}}
  - {{a: x, b: z, rate: 400Gbit, delay: {DETOUR_LEG_MS}ms}}
  - {{a: z, b: y, rate: 400Gbit, delay: {DETOUR_LEG_MS}ms}}
reservations:
  - {{name: first, a: x, b: y, rate: 300Gbit, tcp_ports: [29500], udp_ports: [7100]}}
  - {{name: second, a: x, b: y, rate: 100Gbit, tcp_ports: [29600], udp_ports: [7200]}}
"""


@pytest.fixture(scope="module")
def detour(daemons, tmp_path_factory):
    from tests.integration.machine import leftovers
    from twin.emulation import cleanup
    cleanup.clean()
    path = tmp_path_factory.mktemp("detour") / "detour.yaml"
    path.write_text(TOPOLOGY)
    topo = load_topology(path)
    _, state = runtime.up(topo, str(path), "detpath", progress=lambda s: None)
    yield topo, state, path
    runtime.down()
    left = leftovers()
    cleanup.clean()
    assert not any(left.values()), f"the run left things behind: {left}"


def probe_ms(state: TwinState, port: int) -> dict:
    probe = start_probe(state.worker("x1"), state.worker("y1"), port, pps=500, count=300)
    return probe.result()


def sent_packets(dev: str, classid: str, pid=None) -> int:
    out = subprocess.run(ns_prefix(pid) + ["tc", "-s", "class", "show", "dev", dev, "classid",
                                           classid],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"Sent \d+ bytes (\d+) pkt", out)
    assert found, f"no class {classid} on {dev}: {out!r}"
    return int(found.group(1))


def test_the_second_reservation_is_forwarded_round_the_detour_admission_put_it_on(detour):
    topo, state, _ = detour
    x_z = runtime.find_wan(state, "x", "z")
    before = sent_packets(x_z.intf_a, "1:130")  # the second reservation's probe class
    first, second = probe_ms(state, 7100), probe_ms(state, 7200)
    assert first["received"] == 300 and second["received"] == 300
    # the first on the direct link, the second round z (10 ms), though both go from x to y
    assert DIRECT_MS - early_ms(state, ["x", "y"]) <= first["owd_min_ms"] and first["owd_p50_ms"] <= DIRECT_MS + 1.5
    detour_ms = 2 * DETOUR_LEG_MS
    assert detour_ms - early_ms(state, ["x", "z", "y"]) <= second["owd_min_ms"]
    assert second["owd_p50_ms"] <= detour_ms + 1.5
    # and in its own classes on the detour's egress
    assert sent_packets(x_z.intf_a, "1:130") >= before + 300


def tos_delivered(dev: str, port: int, send) -> list[int]:
    """The TOS byte of every UDP packet to ``port`` leaving ``dev`` (a switch port, towards its
    worker) while ``send()`` runs: tcpdump, printing each header as it comes."""
    cap = subprocess.Popen(["tcpdump", "-i", dev, "-Q", "out", "-p", "-n", "-l", "-v",
                            "--immediate-mode", f"udp and dst port {port}"],
                           env={**os.environ, WORKLOAD_ENV: "1"}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert cap.stderr is not None
        said, deadline = "", time.monotonic() + 10
        while "listening on" not in said and time.monotonic() < deadline:
            if select.select([cap.stderr], [], [], 0.2)[0]:
                said += cap.stderr.readline()
        assert "listening on" in said, said
        send()
        time.sleep(0.5)
    finally:
        cap.terminate()
        out, _ = cap.communicate(timeout=10)
    return [int(t, 16) for t in re.findall(r"\(tos (0x[0-9a-f]+)", out)]


def test_a_workers_own_codepoint_gets_no_reservations_path_or_class(detour):
    """x1 marks its own probes with the second reservation's probe codepoint (44) on a port no
    reservation has: they must arrive at y1 unmarked, by the direct link (2 ms), not round the
    detour the second reservation was given (10 ms), and never in its strict-priority class on
    x1's NIC, on a WAN egress or on the switch port facing y1."""
    _, state, _ = detour
    x1, y1 = state.worker("x1"), state.worker("y1")
    x_y, x_z = runtime.find_wan(state, "x", "y"), runtime.find_wan(state, "x", "z")
    nic = worker_intf_name("x", 1)
    probe_classes = [(x_y.intf_a, None), (x_z.intf_a, None), (y1.port_intf, None), (nic, x1.pid)]
    before = [sent_packets(dev, "1:130", pid) for dev, pid in probe_classes]
    best_effort = sent_packets(x_y.intf_a, "1:10")
    got: dict = {}
    tos = tos_delivered(y1.port_intf, 7300, lambda: got.update(
        start_probe(x1, y1, 7300, pps=500, count=300, dscp=44).result()))
    assert got["received"] == 300, got
    assert len(tos) >= 290 and all(t >> 2 == 0 for t in tos), sorted(set(tos))
    assert DIRECT_MS - early_ms(state, ["x", "y"]) <= got["owd_min_ms"], got
    assert got["owd_p50_ms"] <= DIRECT_MS + 1.5, got
    assert [sent_packets(dev, "1:130", pid) for dev, pid in probe_classes] == before
    assert sent_packets(x_y.intf_a, "1:10") >= best_effort + 300


def twin_trace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin.cli.main", "trace", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


def test_trace_measures_on_a_port_in_no_reservation(detour):
    """7200, trace's first choice, is the second reservation's probe port here: detpath would
    send the trace's probes round the detour while it captures on the direct link. The trace
    takes 7201 and follows x > y; asked for 7200 it refuses before anything starts."""
    ok = twin_trace("x1", "y1", "--seconds", "1", "--pps", "200")
    assert ok.returncode == 0, ok.stderr
    assert "UDP port 7201" in ok.stdout + ok.stderr and "x > y" in ok.stdout + ok.stderr
    refused = twin_trace("x1", "y1", "--seconds", "1", "--port", "7200")
    assert refused.returncode == 1 and refused.stderr.startswith(
        "twin: --port 7200: a UDP port of reservation 'second' (x-y)"), refused.stderr


def test_the_rate_booked_on_a_link_never_exceeds_its_capacity(detour):
    topo, state, _ = detour
    booked = {(w.a, w.b): w.reserved_bps for w in state.wan}
    assert booked == {("x", "y"): 75e6, ("x", "z"): 25e6, ("z", "y"): 25e6}
    assert all(w.reserved_bps <= RESERVABLE * w.emulated_bps for w in state.wan)


def test_inspect_lists_every_reservation_with_its_paths_and_the_rate_booked_per_link(detour):
    out = subprocess.run([sys.executable, "-m", "twin.cli.main", "inspect"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
                         cwd=ROOT).stdout
    assert re.search(r"first\s*│\s*x-y\s*│.*│\s*x > y\s*│\s*x > z > y", out), out
    assert re.search(r"second\s*│\s*x-y\s*│.*│\s*x > z > y\s*│\s*x > y", out), out
    assert re.search(r"x-y\s*│\s*75Mbit\s*│\s*100Mbit\s*│\s*75%\s*│\s*first\s*│\s*second", out), out


@pytest.mark.parametrize("cut, expected_ms, sites", [
    (("x", "z"), DIRECT_MS, ["x", "y"]),  # the first switch puts it on its backup path at once
    # z sends it back to x, x onto the backup
    (("z", "y"), 2 * DETOUR_LEG_MS + DIRECT_MS, ["x", "z", "x", "y"]),
])
def test_a_cut_on_its_path_moves_the_reservation_onto_its_own_backup_path(detour, cut,
                                                                          expected_ms, sites):
    _, state, _ = detour
    runtime.set_link_state(*cut, False)
    try:
        got = probe_ms(state, 7200)
    finally:
        runtime.set_link_state(*cut, True)
    assert got["received"] == 300
    assert expected_ms - early_ms(state, sites) <= got["owd_min_ms"] and got["owd_p50_ms"] <= expected_ms + 1.5
