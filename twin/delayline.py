"""A userspace delay line: the long-haul fiber where the kernel has no netem.

One process per WAN link bridges two veth ends (``a`` and ``b``) in the root namespace and
holds every frame for the link's one-way propagation delay, in each direction. Frames leave in
arrival order, so configured jitter never reorders packets (netem's does). Random loss is applied
per frame. Rate and queueing are not done here: HTB on the switch ports shapes the link, like a
router's egress queue in front of the fiber.

Parameters live in a small JSON file (delay_s, jitter_s, loss, down, seed); SIGHUP re-reads it so
``twin link set`` changes a live link without dropping what is in flight.

Run: ``python -m twin.delayline --a IF_A --b IF_B --params FILE``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
MAX_FRAME = 65536
BURST = 64  # frames read per wake-up per socket before checking the clock again
SO_TIMESTAMPNS = 35  # kernel receive timestamps (CLOCK_REALTIME), SCM_TIMESTAMPNS likewise
ANC_SPACE = socket.CMSG_SPACE(16)
# Timer wake-ups on a VM are late by up to a few hundred microseconds; sleeping until just before
# a frame is due and spinning the rest keeps the delay exact. Set by TWIN_DELAYLINE_SPIN_US.
SPIN_S = float(os.environ.get("TWIN_DELAYLINE_SPIN_US", "200")) * 1e-6


class Params:
    """Link impairments, re-read on SIGHUP."""

    def __init__(self, path: str):
        self.path = path
        self.delay = 0.0
        self.jitter = 0.0
        self.loss = 0.0
        self.down = False
        self.rng = random.Random()
        self.reload()

    def reload(self) -> None:
        with open(self.path) as fh:
            data = json.load(fh)
        self.delay = float(data.get("delay_s", 0.0))
        self.jitter = float(data.get("jitter_s", 0.0))
        self.loss = float(data.get("loss", 0.0))
        self.down = bool(data.get("down", False))
        if "seed" in data:
            self.rng.seed(data["seed"])

    def hold_time(self) -> float:
        if self.jitter <= 0:
            return self.delay
        return max(0.0, self.rng.gauss(self.delay, self.jitter))


def open_port(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    for opt in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 64 * 1024 * 1024)
        except OSError:
            pass
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    return sock


def arrival_time(ancdata, fallback: float) -> float:
    """Kernel receive time of a frame, so our own wake-up latency is not added to the delay."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec * 1e-9
    return fallback


def run(if_a: str, if_b: str, params: Params) -> None:
    sa, sb = open_port(if_a), open_port(if_b)
    # One FIFO per direction: (due time, frame). Due times never decrease within a FIFO.
    queues = {sa.fileno(): collections.deque(), sb.fileno(): collections.deque()}
    peer = {sa.fileno(): sb, sb.fileno(): sa}
    last_due = {sa.fileno(): 0.0, sb.fileno(): 0.0}
    counters = {"forwarded": 0, "lost": 0, "send_errors": 0}
    reload_requested = False
    stop = False

    def on_hup(*_):
        nonlocal reload_requested
        reload_requested = True

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    # Signals must wake select() at once, or a parameter change would wait for the next frame.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    waitables = [sa, sb, wake_r]
    clock = time.time  # same clock as the kernel's receive timestamps
    while not stop:
        if reload_requested:
            reload_requested = False
            params.reload()
        now = clock()
        timeout = None
        for fd, q in queues.items():
            if q:
                wait = q[0][0] - now
                timeout = wait if timeout is None else min(timeout, wait)
        if timeout is not None:
            timeout = timeout - SPIN_S if timeout > SPIN_S else 0
        try:
            readable, _, _ = select.select(waitables, [], [], timeout)
        except InterruptedError:
            continue
        if wake_r in readable:
            readable.remove(wake_r)
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
            if reload_requested or stop:
                continue
        now = clock()
        for sock in readable:
            fd = sock.fileno()
            q = queues[fd]
            for _ in range(BURST):
                try:
                    frame, anc, _flags, addr = sock.recvmsg(MAX_FRAME, ANC_SPACE)
                except BlockingIOError:
                    break
                except OSError:
                    break  # interface went down under us; the link is cut
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own transmission on this port
                if params.down or (params.loss and params.rng.random() < params.loss):
                    counters["lost"] += 1
                    continue
                due = max(arrival_time(anc, now) + params.hold_time(), last_due[fd])
                last_due[fd] = due
                q.append((due, frame))
        now = clock()
        for fd, q in queues.items():
            out = peer[fd]
            while q and q[0][0] <= now:
                _, frame = q.popleft()
                try:
                    out.send(frame)
                    counters["forwarded"] += 1
                except OSError:
                    counters["send_errors"] += 1
    print(json.dumps(counters), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="first interface (root namespace)")
    ap.add_argument("--b", required=True, help="second interface (root namespace)")
    ap.add_argument("--params", required=True, help="JSON file with delay_s, jitter_s, loss, down")
    args = ap.parse_args(argv)
    try:
        os.nice(-10)
    except OSError:
        pass
    try:
        run(args.a, args.b, Params(args.params))
    except OSError as exc:
        print(f"delayline {args.a}<->{args.b}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
