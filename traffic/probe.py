"""Timestamped UDP probe: one-way delay percentiles, PDV, loss and reordering.

Runs inside worker containers (stdlib only: the worker image has python3 and nothing else).
All containers of a twin share the host's clock, so one-way delay is exact: the sender writes
``time.time_ns()`` into each packet just before sending it, and the receiver subtracts it from
the kernel's arrival timestamp of the packet (SO_TIMESTAMPNS), not from the time its own process
woke up: on a loaded 2-core machine a Python receiver is scheduled milliseconds late, which is
the probe's own latency, not the network's. That wake-up lag is reported separately
(``wakeup_p99_ms``), as OWAMP implementations do with kernel timestamps.

Metrics follow the RFCs network engineers know: one-way delay percentiles, PDV as p99.9 minus
minimum (RFC 5481), IPDV (RFC 3393: D(n+1) - D(n) for consecutive sequence numbers that both
arrived, in send order, signed; a loss leaves its neighbours unpaired), loss, and reordered
packets counted as arrivals with a sequence number lower than one already seen (RFC 4737).

  python3 -m traffic.probe recv --port 7000 --duration 5
  python3 -m traffic.probe send --dst 10.2.0.1 --port 7000 --pps 1000 --count 5000 --dscp 46
  python3 -m traffic.probe selftest
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import struct
import sys
import threading
import time
from typing import Sequence

HEADER = struct.Struct("!QQI")  # sequence, send time (ns), magic
LISTENING = "probe: listening"  # the receiver's first stderr line, once its socket is bound
MAGIC = 0x54574E31  # 'TWN1'
# Linux socket option numbers (the socket module does not export them): SO_TIMESTAMPNS asks the
# kernel to attach each datagram's arrival time as a struct timespec control message.
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
TIMESPEC = struct.Struct("@qq")
LINGER_S = 0.5  # a receiver that has every expected packet waits this long for late copies
SAMPLES_KEPT = 20000  # per-packet values a result carries (delays, IPDV), for pooling runs


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of a non-empty list (q in [0, 100])."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s) - 1e-9) - 1))
    return s[k]


def summarize(records: Sequence[tuple[int, ...]], sent: int | None = None) -> dict:
    """records: (seq, send_ns, arrival_ns[, read_ns]) in arrival order -> metrics in milliseconds.

    ``arrival_ns`` is the kernel's receive timestamp; ``read_ns``, when given, is when the
    receiving process got the packet (its lag behind arrival is reported, not counted as delay).
    """
    if not records:
        return {"received": 0, "sent": sent, "loss": 1.0 if sent else None}
    received = len(records)
    # a packet sent 1+1 (or duplicated by the network) counts once: its first copy
    first: dict[int, tuple[int, ...]] = {}
    for r in records:
        first.setdefault(r[0], r)
    records = list(first.values())  # in arrival order
    delays = [(r[2] - r[1]) / 1e6 for r in records]
    wakeups = [(r[3] - r[2]) / 1e6 for r in records if len(r) > 3]
    seqs = [r[0] for r in records]
    reordered, highest = 0, -1
    for q in seqs:
        if q < highest:
            reordered += 1
        highest = max(highest, q)
    unique = len(seqs)
    expected = sent if sent is not None else (max(seqs) + 1)
    ipdv = ipdv_ms({r[0]: d for r, d in zip(records, delays)})
    # longest run of lost sequence numbers, including a run that lasts to the end of the test
    ordered = [-1] + sorted(set(seqs)) + [expected]
    gap = max((b - a - 1 for a, b in zip(ordered, ordered[1:])), default=0)
    return {
        "sent": expected,
        "received": received,
        "duplicates": received - unique,  # copies after the first, removed from every metric
        "loss": max(0.0, (expected - unique) / expected) if expected else 0.0,
        "reordered": reordered,
        "owd_min_ms": min(delays),
        "owd_p50_ms": percentile(delays, 50),
        "owd_p99_ms": percentile(delays, 99),
        "owd_p999_ms": percentile(delays, 99.9),
        "owd_max_ms": max(delays),
        "pdv_ms": percentile(delays, 99.9) - min(delays),
        **ipdv_summary(ipdv),
        "max_gap_packets": gap,  # longest run of consecutive lost sequence numbers
        "wakeup_p99_ms": percentile(wakeups, 99) if wakeups else None,
        "delays_ms": thinned(delays),
        "ipdv_ms": thinned(ipdv),  # in send order
    }


def thinned(values: list[float], most: int = SAMPLES_KEPT) -> list[float]:
    """Every k-th value, so that at most about ``most`` are kept (for pooling across runs)."""
    return values if len(values) <= most else values[:: len(values) // most + 1]


def ipdv_ms(delay_by_seq: dict[int, float]) -> list[float]:
    """RFC 3393 IPDV in send order: D(n+1) - D(n) for every n where packets n and n+1 both
    arrived, signed (positive: the later packet took longer). Pairs never span a loss; arrival
    order (reordering) does not matter, each packet keeps the delay of its own first copy."""
    return [delay_by_seq[n + 1] - delay_by_seq[n] for n in sorted(delay_by_seq)
            if n + 1 in delay_by_seq]


def ipdv_summary(ipdv: list[float]) -> dict:
    """Signed IPDV's minimum, median, p99 and maximum, and the p99 of its magnitude (the one
    number for "how much does delay change from one packet to the next", either way); None
    where no two consecutive packets arrived."""
    if not ipdv:
        return {"ipdv_pairs": 0, "ipdv_min_ms": None, "ipdv_p50_ms": None, "ipdv_p99_ms": None,
                "ipdv_max_ms": None, "ipdv_abs_p99_ms": None}
    return {"ipdv_pairs": len(ipdv), "ipdv_min_ms": min(ipdv),
            "ipdv_p50_ms": percentile(ipdv, 50), "ipdv_p99_ms": percentile(ipdv, 99),
            "ipdv_max_ms": max(ipdv), "ipdv_abs_p99_ms": percentile([abs(v) for v in ipdv], 99)}


def receive(port: int, duration: float, bind: str = "0.0.0.0", idle: float = 2.0,
            ready: threading.Event | None = None, announce: bool = False,
            expect: int | None = None) -> list[tuple[int, int, int, int]]:
    """Collect probe packets until ``duration`` passes, or ``idle`` s pass with none after the
    first, or LINGER_S after every one of ``expect`` sequence numbers has arrived (the linger
    catches the later copies of packets sent 1+1 over a longer path).

    Each record is (seq, send_ns, arrival_ns, read_ns); see the module docstring.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    ancbuf = socket.CMSG_SPACE(TIMESPEC.size)
    sock.bind((bind, port))
    if ready:
        ready.set()
    if announce:
        print(f"{LISTENING} on {port}", file=sys.stderr, flush=True)
    records = []
    seen: set[int] = set()
    deadline = time.monotonic() + duration
    last = None
    while True:
        now = time.monotonic()
        if now >= deadline or (last is not None and now - last > idle):
            break
        sock.settimeout(min(0.2, deadline - now))
        try:
            data, anc, _, _ = sock.recvmsg(65535, ancbuf)
        except socket.timeout:
            continue
        read_ns = time.time_ns()
        if len(data) < HEADER.size:
            continue
        seq, sent_ns, magic = HEADER.unpack_from(data)
        if magic != MAGIC:
            continue
        records.append((seq, sent_ns, arrival_ns(anc, read_ns), read_ns))
        last = time.monotonic()
        seen.add(seq)
        if expect is not None and len(seen) == expect:
            deadline = min(deadline, last + LINGER_S)
    sock.close()
    return records


def wait_listening(proc, timeout: float = 15.0) -> None:
    """Until a ``recv`` subprocess (stderr piped, text mode) has bound its socket, instead of a
    fixed sleep that a slow start (a loaded machine, a first import) can outlast."""
    import select
    deadline = time.monotonic() + timeout
    said = ""
    while (left := deadline - time.monotonic()) > 0:
        if select.select([proc.stderr], [], [], min(left, 0.2))[0]:
            line = proc.stderr.readline()
            if line.startswith(LISTENING):
                return
            said += line
        if proc.poll() is not None:
            said += proc.stderr.read()
            raise RuntimeError(f"probe receiver exited: {said.strip()[-200:] or 'no output'}")
    raise RuntimeError(f"probe receiver not listening after {timeout:.0f} s")


def arrival_ns(ancillary: list[tuple[int, int, bytes]], fallback: int) -> int:
    """The kernel's receive timestamp from recvmsg's control messages (``fallback`` if absent)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            return sec * 1_000_000_000 + nsec
    return fallback


def send(dst: str, port: int, pps: float, count: int, size: int = 200, dscp: int = 0) -> int:
    """Send ``count`` probes at ``pps`` packets/s (paced against the clock, not sleeps)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if dscp:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
    pad = b"\0" * max(0, size - HEADER.size)
    start = time.monotonic()
    for seq in range(count):
        due = start + seq / pps
        while (wait := due - time.monotonic()) > 0:
            time.sleep(min(wait, 0.001) if wait > 0.0002 else 0)
        sock.sendto(HEADER.pack(seq, time.time_ns(), MAGIC) + pad, (dst, port))
    sock.close()
    return count


def selftest() -> dict:
    """Probe over the container's loopback: proves the worker-side code runs in the image."""
    ready = threading.Event()
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault(
        "records", receive(7999, 10.0, "127.0.0.1", idle=0.5, ready=ready)))
    t.start()
    ready.wait(5)
    sent = send("127.0.0.1", 7999, pps=2000, count=500)
    t.join()
    return summarize(box["records"], sent)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="traffic.probe", description="timestamped UDP probe")
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, default=7000)
    r.add_argument("--duration", type=float, default=10.0)
    r.add_argument("--expect", type=int, default=None, help="packets the sender will send")
    s = sub.add_parser("send")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, default=7000)
    s.add_argument("--pps", type=float, default=1000.0)
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--size", type=int, default=200)
    s.add_argument("--dscp", type=int, default=0)
    sub.add_parser("selftest")
    a = ap.parse_args(argv)
    if a.mode == "recv":
        print(json.dumps(summarize(receive(a.port, a.duration, announce=True, expect=a.expect),
                                   a.expect)))
    elif a.mode == "send":
        print(json.dumps({"sent": send(a.dst, a.port, a.pps, a.count, a.size, a.dscp)}))
    else:
        print(json.dumps(selftest()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
