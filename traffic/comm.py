"""Point-to-point transport between ranks: a TCP full mesh with several connections per peer.

One TCP flow cannot fill a long fat link when loss or window limits bite, so each peer pair
gets ``conns`` connections and every message is striped across them. Every blocking operation
has a deadline; a dead peer or a cut link ends the run with an error that names the rank, the
peer and the phase instead of hanging.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable

HELLO = struct.Struct("!II")  # sender rank, connection index
STRIPE = 256 * 1024  # bytes per block when a peer's stream is spread over several connections


class CollectiveError(RuntimeError):
    """A collective could not finish; the message names rank, peer and phase."""


@dataclass
class RankInfo:
    rank: int
    ip: str
    site: str
    port: int | None = None  # only when ranks share an address (tests on loopback)


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) of ``parts`` nearly equal pieces of n (the first n % parts get one more)."""
    base, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        end = start + base + (1 if i < extra else 0)
        out.append((start, end))
        start = end
    return out


def concurrently(*calls: Callable[[], None]) -> None:
    """Run the calls at the same time, the first in this thread and each other one in a thread of
    its own, and return once all have ended. An exception is raised here only after every call
    has ended, so no thread is left sending into a buffer its caller reuses: the first call's own
    exception, else the first one another call raised. A send that fails while its receive
    succeeds is reported, not lost in its thread."""
    if not calls:
        return
    errors: list[BaseException] = []

    def keep(call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - raised in the caller's thread below
                errors.append(exc)
        return run
    first, *others = calls
    threads = [threading.Thread(target=keep(c)) for c in others]
    for t in threads:
        t.start()
    try:
        first()
    finally:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


class Comm:
    """Sockets to every other rank; send/recv of byte buffers (memoryviews) striped over conns."""

    def __init__(self, rank: int, ranks: list[RankInfo], port: int = 29500, conns: int = 1,
                 timeout: float = 30.0, sndbuf: int | dict[str, int] = 0):
        self.rank = rank
        self.ranks = ranks
        self.size = len(ranks)
        self.port = port
        self.conns = conns
        self.timeout = timeout
        self.sndbuf = sndbuf
        self.phase = "setup"
        self.peers: dict[int, list[socket.socket]] = {}
        self.sent = {j: 0 for j in range(self.size)}  # bytes of each peer stream so far
        self.received = {j: 0 for j in range(self.size)}
        if self.size > 1:
            self._connect_mesh()

    # ---- setup ---------------------------------------------------------------
    def _port(self, rank: int) -> int:
        return self.ranks[rank].port or self.port

    def _tune(self, s: socket.socket) -> None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.timeout)

    def window(self, peer: int) -> int:
        """The send window of the connections to ``peer`` (0: the kernel's autotuning): one for
        all, or the one of the pair of sites ("A>B")."""
        if isinstance(self.sndbuf, int):
            return self.sndbuf
        return self.sndbuf.get(f"{self.ranks[self.rank].site}>{self.ranks[peer].site}", 0)

    def _bound(self, s: socket.socket, peer: int) -> None:
        if size := self.window(peer):
            # Linux doubles what it is given (the bookkeeping of its buffers counts too): the
            # socket then holds at most ``size`` bytes unsent or unacknowledged
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size // 2)

    def _connect_mesh(self) -> None:
        """Rank i connects to every j > i; accepts from every j < i."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("0.0.0.0", self._port(self.rank)))
        except OSError as exc:
            listener.close()
            raise CollectiveError(f"rank {self.rank}: setup: cannot listen on port "
                                  f"{self._port(self.rank)}: {exc.strerror}") from None
        listener.listen(1024)
        expected = self.rank * self.conns
        accepted: dict[int, list] = {j: [None] * self.conns for j in range(self.rank)}
        errors: list[str] = []

        def accept_all() -> None:
            listener.settimeout(self.timeout)
            try:
                for _ in range(expected):
                    s, _ = listener.accept()
                    self._tune(s)
                    peer, idx = HELLO.unpack(self._recv_exact(s, HELLO.size, -1))
                    self._bound(s, peer)
                    accepted[peer][idx] = s
            except OSError as exc:
                missing = [j for j, socks in accepted.items() if None in socks]
                errors.append(f"no connection from rank(s) {missing} ({exc})")

        t = threading.Thread(target=accept_all, daemon=True)
        t.start()
        deadline = time.monotonic() + self.timeout
        for j in range(self.rank + 1, self.size):
            socks = []
            for idx in range(self.conns):
                while True:
                    try:
                        s = socket.create_connection((self.ranks[j].ip, self._port(j)), timeout=2.0)
                        break
                    except OSError as exc:
                        if time.monotonic() > deadline:
                            raise CollectiveError(
                                f"rank {self.rank}: setup: cannot connect to rank {j} "
                                f"({self.ranks[j].ip}:{self._port(j)}): {exc}") from None
                        time.sleep(0.05)
                self._tune(s)
                self._bound(s, j)
                s.sendall(HELLO.pack(self.rank, idx))
                socks.append(s)
            self.peers[j] = socks
        t.join(self.timeout + 1)
        listener.close()
        if errors or t.is_alive():
            raise CollectiveError(f"rank {self.rank}: setup: " + (errors[0] if errors else "accept timed out"))
        for j, socks in accepted.items():
            self.peers[j] = socks

    # ---- byte transport --------------------------------------------------------
    def _recv_exact(self, s: socket.socket, n: int, peer: int) -> bytes:
        buf = bytearray(n)
        self._recv_into(s, memoryview(buf), peer)
        return bytes(buf)

    def _fail(self, peer: int, what: str, exc: Exception) -> CollectiveError:
        kind = "timed out" if isinstance(exc, socket.timeout) else str(exc) or type(exc).__name__
        return CollectiveError(f"rank {self.rank}: {self.phase}: {what} rank {peer} failed: {kind}")

    def _recv_into(self, s: socket.socket, mv: memoryview, peer: int) -> None:
        got = 0
        n = len(mv)
        while got < n:
            try:
                k = s.recv_into(mv[got:], n - got)
            except OSError as exc:
                raise self._fail(peer, "receive from", exc) from None
            if k == 0:
                raise self._fail(peer, "receive from", ConnectionError("peer closed the connection"))
            got += k

    def _send(self, s: socket.socket, mv: memoryview, peer: int) -> None:
        try:
            s.sendall(mv)
        except OSError as exc:
            raise self._fail(peer, "send to", exc) from None

    def _stripes(self, peer: int, n: int, sent: bool) -> list[list[tuple[int, int]]]:
        """[start, end) pieces of the next n bytes of this peer's stream, per connection.

        Block k (STRIPE bytes) of the byte stream between two ranks always travels on connection
        k % conns, counted from the start of the stream, not of the call: a sender may hand over
        a whole chunk while the receiver takes it in pipeline pieces and both still agree.
        """
        offsets = self.sent if sent else self.received
        base = offsets[peer]
        offsets[peer] = base + n
        parts: list[list[tuple[int, int]]] = [[] for _ in range(self.conns)]
        pos = 0
        while pos < n:
            at = base + pos
            end = min(n, pos + STRIPE - at % STRIPE)
            parts[(at // STRIPE) % self.conns].append((pos, end))
            pos = end
        return parts

    def _striped(self, peer: int, mv: memoryview, fn, sent: bool) -> None:
        socks = self.peers[peer]
        if len(socks) == 1:
            fn(socks[0], mv, peer)
            return

        def carry(s: socket.socket, pieces: list[tuple[int, int]]) -> Callable[[], None]:
            def run() -> None:
                for a, b in pieces:
                    fn(s, mv[a:b], peer)
            return run
        concurrently(*(carry(s, pieces) for s, pieces in
                       zip(socks, self._stripes(peer, len(mv), sent)) if pieces))

    def send(self, peer: int, mv: memoryview) -> None:
        self._striped(peer, mv.cast("B") if mv.format != "B" else mv, self._send, sent=True)

    def recv(self, peer: int, mv: memoryview) -> None:
        self._striped(peer, mv.cast("B") if mv.format != "B" else mv, self._recv_into, sent=False)

    def sendrecv(self, dst: int, send_mv: memoryview, src: int, recv_mv: memoryview) -> None:
        """Send to dst while receiving from src (a ring step); both complete or an error names who."""
        concurrently(lambda: self.recv(src, recv_mv), lambda: self.send(dst, send_mv))

    def barrier(self) -> None:
        """Gather a byte at rank 0, then release everyone (2 one-way latencies across the fabric)."""
        if self.size == 1:
            return
        phase, self.phase = self.phase, "barrier"
        token = memoryview(bytearray(1))
        if self.rank == 0:
            for j in range(1, self.size):
                self.recv(j, token)
            for j in range(1, self.size):
                self.send(j, token)
        else:
            self.send(0, token)
            self.recv(0, token)
        self.phase = phase

    def close(self) -> None:
        for socks in self.peers.values():
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass


def ranks_from_json(text: str) -> list[RankInfo]:
    return [RankInfo(int(r["rank"]), r["ip"], r["site"], r.get("port")) for r in json.loads(text)]


def send_windows(text: str) -> int | dict[str, int]:
    """``--sndbuf``: bytes for every connection, or per pair of sites."""
    value = json.loads(text)
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, dict) and all(isinstance(v, int) and v >= 0 for v in value.values()):
        return {str(k): v for k, v in value.items()}
    raise argparse.ArgumentTypeError(f"not a byte count or an object of them: {text[:80]!r}")


def add_rank_arguments(ap: argparse.ArgumentParser, port: int, timeout: float) -> None:
    """The options of every rank program: who it is, the rendezvous, and its transport."""
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--ranks", required=True, help="JSON list of {rank, ip, site}")
    ap.add_argument("--conns", type=int, default=1, help="TCP connections per peer")
    ap.add_argument("--port", type=int, default=port)
    ap.add_argument("--timeout", type=float, default=timeout, help="per-operation deadline (s)")
    ap.add_argument("--sndbuf", type=send_windows, default=0,
                    help="bytes each connection may hold unsent or in flight: a number, or a JSON "
                         "object of them per pair of sites ({\"A>B\": bytes}; 0: the kernel's "
                         "autotuning)")


def print_iterations(job: dict, iteration: Callable[[], dict]) -> None:
    """Run ``job``'s warm-up iterations, then its measured ones, each printed as one JSON line
    with its index: the output every replay rank gives (traffic.train, traffic.graph_replay)."""
    warmup = job.get("warmup", 1)
    for it in range(warmup + job["iterations"]):
        res = iteration()
        if it >= warmup:
            res["iteration"] = it - warmup
            print(json.dumps(res), flush=True)


def run_rank(args: argparse.Namespace, body: Callable[[Comm], None]) -> int:
    """Connect the rank ``args`` name (see add_rank_arguments), run ``body(comm)``, and turn any
    failure into one JSON error line."""
    comm = None
    try:
        comm = Comm(args.rank, ranks_from_json(args.ranks), args.port, args.conns, args.timeout,
                    args.sndbuf)
        body(comm)
    except (CollectiveError, ValueError, KeyError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    finally:
        if comm:
            comm.close()
    return 0
