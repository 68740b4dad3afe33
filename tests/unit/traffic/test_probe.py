"""Probe metrics: one-way delay percentiles, PDV (RFC 5481), IPDV (RFC 3393), loss, reordering
(RFC 4737)."""

import socket

import pytest

from traffic.probe import (
    SCM_TIMESTAMPNS,
    TIMESPEC,
    arrival_ns,
    ipdv_ms,
    percentile,
    receive,
    send,
    summarize,
)

MS = 1_000_000  # ns


def sent_at_n_ms(delays_ms: dict[int, float]) -> list[tuple[int, int, int]]:
    """Records of packets n sent at n ms with one-way delay delays_ms[n], in arrival order."""
    recs = [(n, n * MS, n * MS + round(d * MS)) for n, d in delays_ms.items()]
    return sorted(recs, key=lambda r: r[2])


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
    # each packet 1 us later than the one before it: 999 pairs, every IPDV +0.001 ms
    assert s["ipdv_pairs"] == 999 and len(s["ipdv_ms"]) == 999
    assert s["ipdv_min_ms"] == pytest.approx(0.001) and s["ipdv_max_ms"] == pytest.approx(0.001)


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


def test_ipdv_pairs_never_span_a_loss():
    """Packets 0-5 with delays 10, 12, 11, lost, 15, 14 ms: the pairs are (0,1) +2, (1,2) -1 and
    (4,5) -1; (2,4) is no pair. Differences in arrival order would have been 2, 1, 4, 1."""
    s = summarize(sent_at_n_ms({0: 10, 1: 12, 2: 11, 4: 15, 5: 14}), sent=6)
    assert s["ipdv_ms"] == pytest.approx([2, -1, -1])
    assert s["ipdv_pairs"] == 3
    assert s["ipdv_min_ms"] == pytest.approx(-1) and s["ipdv_max_ms"] == pytest.approx(2)
    assert s["ipdv_p50_ms"] == pytest.approx(-1)  # nearest rank of [-1, -1, 2]
    assert s["ipdv_p99_ms"] == pytest.approx(2) and s["ipdv_abs_p99_ms"] == pytest.approx(2)
    assert s["loss"] == pytest.approx(1 / 6)


def test_ipdv_is_in_send_order_and_signed_when_packets_are_reordered():
    """Packet 1 takes 13 ms, its neighbours 10 ms: it arrives (at 14 ms) after 2 (12) and 3 (13).
    In send order the IPDVs are +3, -3, 0; in arrival order they would have been 0, 0, +3."""
    s = summarize(sent_at_n_ms({0: 10, 1: 13, 2: 10, 3: 10}), sent=4)
    assert [r for r in s["ipdv_ms"]] == pytest.approx([3, -3, 0])
    assert s["reordered"] == 1
    assert s["ipdv_min_ms"] == pytest.approx(-3) and s["ipdv_max_ms"] == pytest.approx(3)
    assert s["ipdv_p50_ms"] == pytest.approx(0) and s["ipdv_abs_p99_ms"] == pytest.approx(3)


def test_ipdv_of_packets_sent_1_plus_1_uses_each_packets_first_copy():
    """Ten packets sent on two paths (10 ms and 20 ms); packet 5's primary copy is lost, so its
    first copy is the backup's: IPDV +10 into it and -10 out of it, 0 everywhere else. Taking
    the later copies instead would give 0 everywhere."""
    recs = []
    for n in range(10):
        if n != 5:
            recs.append((n, n * MS, n * MS + 10 * MS))
        recs.append((n, n * MS, n * MS + 20 * MS))
    recs.sort(key=lambda r: r[2])
    s = summarize(recs, sent=10)
    assert s["duplicates"] == 9 and s["loss"] == 0
    assert s["ipdv_ms"] == pytest.approx([0, 0, 0, 0, 10, -10, 0, 0, 0])
    assert s["ipdv_min_ms"] == pytest.approx(-10) and s["ipdv_max_ms"] == pytest.approx(10)
    assert s["ipdv_p50_ms"] == pytest.approx(0) and s["ipdv_abs_p99_ms"] == pytest.approx(10)


def test_no_two_consecutive_packets_no_ipdv():
    s = summarize(sent_at_n_ms({0: 10, 2: 10, 4: 10}), sent=5)
    assert s["ipdv_pairs"] == 0 and s["ipdv_ms"] == []
    assert s["ipdv_min_ms"] is None and s["ipdv_abs_p99_ms"] is None
    assert ipdv_ms({7: 1.0}) == []


def test_a_receiver_with_every_expected_packet_stops_without_waiting_idle():
    """Over loopback: 100 packets expected, all in; the receiver ends about LINGER_S after the
    last, not after its 5 s idle wait or its 20 s duration."""
    import threading
    import time

    ready = threading.Event()
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault(
        "records", receive(7304, 20.0, "127.0.0.1", idle=5.0, ready=ready, expect=100)))
    t.start()
    ready.wait(5)
    send("127.0.0.1", 7304, pps=1000, count=100)
    t0 = time.monotonic()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 2.0
    assert len(box["records"]) == 100
