"""Calibration's targets and rows from known measurements: RTT, one-way PDV (RFC 5481) per
direction, TCP against the machine's ceiling ("not measured" above it), the summary line."""

import csv
import subprocess

import pytest

from traffic.probe import summarize
from twin.emulation import cleanup
from twin.measure.calibrate import (
    MISSED,
    NOT_MEASURED,
    OK,
    CalibrationRow,
    calibration_row,
    pdv_status,
    rtt_status,
    summary,
    throughput_status,
    write_csv,
)
from twin.measure.ceiling import Ceiling, bridge_datapath_type, rig_commands
from twin.units import tcp_payload_share

MS = 1_000_000
# one TCP flow through the scratch switch: 3,000 Mbit/s of goodput at MTU 9000
CEILING = Ceiling(goodput_bps=3000e6, mtu=9000, datapath="user")
COLUMNS_BEFORE = ["kind", "src", "dst", "hops", "configured_rtt_ms", "measured_rtt_min_ms",
                  "measured_rtt_median_ms", "rtt_error_ms", "rtt_ok", "pdv_ms", "pdv_ok",
                  "emulated_rate_mbps", "goodput_mbps", "goodput_ratio", "wire_ratio",
                  "throughput_ok", "retransmits", "mechanism", "scale"]


def probe(delays_ms: list[float], sent: int | None = None) -> dict:
    """traffic.probe's result for packets n sent at n ms with the given one-way delays."""
    recs = [(n, n * MS, n * MS + round(d * MS)) for n, d in enumerate(delays_ms)]
    return summarize(sorted(recs, key=lambda r: r[2]), sent)


def test_rtt_within_2_percent_or_0_2_ms():
    assert rtt_status(0.26, 13.41) == OK  # 2% of 13.41 ms is 0.268 ms
    assert rtt_status(-0.27, 13.41) == MISSED
    assert rtt_status(0.2, 2.0) == OK and rtt_status(0.21, 2.0) == MISSED  # the 0.2 ms floor


def test_pdv_target_holds_in_both_directions():
    assert pdv_status(0.5, 0.1) == OK
    assert pdv_status(0.1, 0.51) == MISSED


def test_a_pdv_below_the_machines_own_floor_is_not_measured_never_ok():
    # the scratch switch's probe varied 0.9 ms: no path of this machine can show 0.5 ms
    assert pdv_status(0.1, 2.0, machine_pdv_ms=0.9) == NOT_MEASURED
    assert pdv_status(0.3, 0.4, machine_pdv_ms=0.9) == OK  # met it anyway: measured
    assert pdv_status(0.1, 2.0, machine_pdv_ms=0.3) == MISSED  # the machine could: the twin added it
    assert pdv_status(0.1, 2.0, machine_pdv_ms=0.5) == MISSED  # at the target exactly: testable
    assert pdv_status(0.1, 2.0, machine_pdv_ms=None) == MISSED  # floor not measured: no excuse


def test_row_states_the_machines_pdv_floor():
    noisy = Ceiling(goodput_bps=3000e6, mtu=9000, datapath="user", pdv_ms=1.25)
    row = calibration_row("wan-link", "a1", "b1", 1, 0.005, 100e6, [10.0], probe([5.0] * 998 + [7.0, 7.0]),
                          probe([5.0] * 10), 99e6, 0, noisy, "delayline", "1/4000")
    assert row.fwd_pdv_ms == 2.0 and row.machine_pdv_floor_ms == 1.25
    assert row.pdv_status == NOT_MEASURED and not row.pdv_ok


def test_a_rate_above_the_machines_ceiling_is_not_measured_never_ok():
    wire_ceiling = 3000e6 / tcp_payload_share(9000)  # 3,022 Mbit/s as frames
    assert CEILING.wire_bps == pytest.approx(wire_ceiling)
    assert throughput_status(0.99, 100e6, CEILING) == OK
    assert throughput_status(0.90, 100e6, CEILING) == MISSED  # the machine could carry it
    assert throughput_status(0.08, 40e9, CEILING) == NOT_MEASURED
    # 95% of the rate just within / just beyond what the machine carries
    assert throughput_status(0.94, wire_ceiling / 0.95 * 0.999, CEILING) == MISSED
    assert throughput_status(0.94, wire_ceiling / 0.95 * 1.001, CEILING) == NOT_MEASURED
    assert throughput_status(0.96, 40e9, CEILING) == OK  # reached it after all: measured


def test_row_from_known_measurements(tmp_path):
    # 6.7 ms one way configured; pings: 99 at 13.6 ms and one at 14.6; forward probe: 1,000
    # packets at 6.9 ms but for the last two at 7.7 (p99.9 7.7: PDV 0.8); reverse: 1,000
    # packets alternating 6.80 and 6.85 ms (PDV 0.05, IPDV +-0.05)
    fwd = probe([6.9] * 998 + [7.7, 7.7])
    rev = probe([6.80 if n % 2 == 0 else 6.85 for n in range(1000)], sent=1000)
    row = calibration_row("wan-link", "beijing1", "wuhan1", 1, 0.0067, 100e6,
                          [13.6] * 99 + [14.6], fwd, rev, goodput_bps=98.5e6, retransmits=2,
                          ceiling=CEILING, mechanism="delayline", scale="1/4000")
    assert row.configured_rtt_ms == 13.4 and row.configured_owd_ms == 6.7
    # the 99 printed as 13.6 were anywhere in [13.55, 13.65): the median is the 50th of them
    assert row.measured_rtt_median_ms == 13.601 and row.rtt_error_ms == pytest.approx(0.201)
    assert row.rtt_status == OK and row.rtt_ok  # 2% of 13.4 is 0.268
    assert row.pdv_ms == 0.0  # ping's p99 - min: the one slow ping is the 100th
    assert row.fwd_owd_min_ms == 6.9 and row.fwd_owd_p999_ms == 7.7 and row.fwd_pdv_ms == 0.8
    assert row.rev_pdv_ms == pytest.approx(0.05) and row.rev_loss == 0.0
    assert row.pdv_status == MISSED and not row.pdv_ok  # the forward direction's 0.8 ms
    assert row.fwd_ipdv_min_ms == 0.0 and row.fwd_ipdv_max_ms == pytest.approx(0.8)
    assert row.rev_ipdv_abs_p99_ms == pytest.approx(0.05)
    assert row.wire_ratio == pytest.approx(0.985 / tcp_payload_share(9000), abs=1e-4)
    assert row.throughput_status == OK and row.throughput_ok
    assert row.machine_tcp_ceiling_mbps == 3000.0
    write_csv([row], tmp_path / "c.csv")
    header = next(csv.reader((tmp_path / "c.csv").open()))
    assert header[:len(COLUMNS_BEFORE)] == COLUMNS_BEFORE  # every column as before, in order
    assert {"rtt_status", "pdv_status", "throughput_status", "fwd_owd_p50_ms", "rev_owd_p99_ms",
            "fwd_pdv_ms", "rev_ipdv_p99_ms", "fwd_loss", "rev_reordered"} <= set(header)


def test_loss_and_reordering_per_direction():
    # packets 0-9: 3 lost, 6 overtaken by 7 (arrives 1.5 ms late)
    delays = {n: 5.0 for n in range(10) if n != 3}
    delays[6] = 6.5
    recs = sorted(((n, n * MS, n * MS + round(d * MS)) for n, d in delays.items()),
                  key=lambda r: r[2])
    rev = summarize(recs, sent=10)
    row = calibration_row("worker-pair", "a1", "b1", 1, 0.005, 100e6, [10.2] * 10,
                          probe([5.0] * 10), rev, 99e6, 0, CEILING, "delayline", "1/4000")
    assert row.rev_loss == pytest.approx(0.1) and row.rev_reordered == 1
    assert row.fwd_loss == 0.0 and row.fwd_reordered == 0
    # pairs (0,1) (1,2) (4,5) (5,6) (6,7) (7,8) (8,9): 0 0 0 +1.5 -1.5 0 0
    assert row.rev_ipdv_min_ms == -1.5 and row.rev_ipdv_max_ms == 1.5


def status_row(rtt: str, pdv: str, tcp: str) -> CalibrationRow:
    row = calibration_row("wan-link", "a1", "b1", 1, 0.005, 100e6, [10.0], probe([5.0] * 10),
                          probe([5.0] * 10), 99e6, 0, CEILING, "delayline", "1/4000")
    row.rtt_status, row.pdv_status, row.throughput_status = rtt, pdv, tcp
    return row


def test_summary_counts_measured_targets_and_says_how_many_were_not_measured():
    rows = [status_row(OK, OK, OK), status_row(OK, OK, NOT_MEASURED),
            status_row(MISSED, OK, OK), status_row(OK, MISSED, NOT_MEASURED)]
    assert summary(rows) == "2/4 paths within targets (2 not measured)"
    assert summary(rows[:1]) == "1/1 paths within targets"
    assert summary([]) is None


def test_the_ceiling_rig_carries_the_twins_marks_so_twin_clean_removes_it(monkeypatch):
    cmds, namespaces, bridge = rig_commands("abc123", 9000, "user")
    add_br = cmds[0]
    assert "datapath_type=netdev" in add_br and bridge_datapath_type("kernel") == "system"
    assert any(a.startswith("external-ids:fabric-twin=") for a in add_br)
    assert all(ns.startswith("twin-") for ns in namespaces)
    ports = [c[4] for c in cmds if c[:3] == ["ip", "link", "add"]]
    assert len(ports) == 2 and all(len(p) <= 15 for p in ports)
    assert ["ip", "-n", namespaces[0], "link", "set", "c0", "up"] in cmds
    assert all("mtu" in c and "9000" in c for c in cmds if c[:3] == ["ip", "link", "add"])
    # what `twin clean` finds among the root namespace's interfaces
    listing = "".join(f"{i}: {name}@if2: <BROADCAST> mtu 9000\n"
                      for i, name in enumerate(ports + [bridge, "eth0"], 1))
    monkeypatch.setattr(cleanup.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a[0], 0, stdout=listing, stderr=""))
    assert sorted(cleanup.twin_interfaces()) == sorted(ports + [bridge])
