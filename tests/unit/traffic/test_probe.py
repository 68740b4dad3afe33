"""Probe metrics: one-way delay percentiles, PDV, loss, reordering (RFC 5481 / 4737 style)."""

import socket

import pytest

from traffic.probe import SCM_TIMESTAMPNS, TIMESPEC, arrival_ns, percentile, summarize


def test_percentile_nearest_rank():
    vals = list(range(1, 101))
    assert percentile(vals, 50) == 50
    assert percentile(vals, 99) == 99
    assert percentile(vals, 100) == 100
    assert percentile([7.0], 99.9) == 7.0


def test_summary_in_order_no_loss():
    recs = [(i, 0, 10_000_000 + i * 1000) for i in range(1000)]  # 10 ms + i us
    s = summarize(recs, sent=1000)
    assert s["loss"] == 0 and s["reordered"] == 0 and s["duplicates"] == 0
    assert s["owd_min_ms"] == pytest.approx(10.0)
    assert s["owd_max_ms"] == pytest.approx(10.999)
    assert s["pdv_ms"] == pytest.approx(0.998)


def test_summary_counts_loss_reordering_and_duplicates():
    seqs = [0, 1, 3, 2, 4, 4, 6]  # 5 lost, 2 arrives after 3, 4 duplicated
    recs = [(q, 0, 1_000_000) for q in seqs]
    s = summarize(recs, sent=7)
    assert s["reordered"] == 1
    assert s["duplicates"] == 1
    assert s["max_gap_packets"] == 1
    assert s["loss"] == pytest.approx(1 / 7)


def test_a_loss_that_lasts_to_the_end_is_a_gap():
    recs = [(q, 0, 1_000_000) for q in range(40)]
    assert summarize(recs, sent=100)["max_gap_packets"] == 60


def test_summary_of_nothing():
    assert summarize([], sent=10)["loss"] == 1.0


def test_arrival_time_comes_from_the_kernel_timestamp():
    stamp = (socket.SOL_SOCKET, SCM_TIMESTAMPNS, TIMESPEC.pack(1_700_000_000, 250))
    other = (socket.IPPROTO_IP, 8, b"\0" * 4)
    assert arrival_ns([other, stamp], fallback=5) == 1_700_000_000_000_000_250
    assert arrival_ns([other], fallback=5) == 5  # no timestamp: the read time


def test_receiver_wakeup_is_reported_not_counted_as_delay():
    # arrival 10 ms after sending, read 3 ms later: the delay is 10 ms, the wake-up lag 3 ms
    recs = [(i, 0, 10_000_000, 13_000_000) for i in range(100)]
    s = summarize(recs, sent=100)
    assert s["owd_p99_ms"] == pytest.approx(10.0)
    assert s["wakeup_p99_ms"] == pytest.approx(3.0)


def test_kernel_timestamps_over_loopback():
    """A real socket with SO_TIMESTAMPNS: arrival is stamped before the process reads it."""
    from traffic.probe import selftest
    s = selftest()
    assert s["received"] == s["sent"] == 500
    assert s["wakeup_p99_ms"] is not None and s["wakeup_p99_ms"] >= 0
    assert 0 <= s["owd_min_ms"] < 50



def test_copies_of_a_packet_sent_1_plus_1_count_once_at_their_first_arrival():
    """Primary copies arrive after 10 ms, backup copies after 20 ms, and from packet 40 on only
    the backup copy arrives (the primary path was cut): nothing is lost or reordered."""
    recs = []
    for q in range(100):
        if q < 40:
            recs.append((q, q * 1_000_000, q * 1_000_000 + 10_000_000))
        recs.append((q, q * 1_000_000, q * 1_000_000 + 20_000_000))
    recs.sort(key=lambda r: r[2])
    s = summarize(recs, sent=100)
    assert s["loss"] == 0 and s["max_gap_packets"] == 0 and s["reordered"] == 0
    assert s["duplicates"] == 40 and s["received"] == 140
    assert s["owd_min_ms"] == pytest.approx(10.0) and s["owd_max_ms"] == pytest.approx(20.0)


def test_the_sender_waits_for_a_late_receiver_and_hears_a_dead_one():
    """Senders wait for the receiver instead of sleeping a fixed time."""
    import subprocess
    import sys
    import time

    from traffic.probe import wait_listening
    t0 = time.monotonic()
    late = subprocess.Popen(["sh", "-c", f"sleep 1; exec {sys.executable} -m traffic.probe recv "
                             "--port 7303 --duration 2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(late)
        assert time.monotonic() - t0 >= 1.0
    finally:
        late.kill()
        late.wait()
    dead = subprocess.Popen(["sh", "-c", "echo no such port >&2; exit 3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with pytest.raises(RuntimeError, match="no such port"):
        wait_listening(dead, timeout=5)
