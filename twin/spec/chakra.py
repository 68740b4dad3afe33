"""MLCommons Chakra execution traces (ET), read as Chakra writes them, checked before anything runs.

A trace is one file per rank (``trace.0.et``, ``trace.1.et``, ...; gzip-compressed ones too, as
Chakra's reader takes them): a length-delimited ``GlobalMetadata`` message, then one
length-delimited ``Node`` per node, each length a varint in front of the message (Chakra's
``encodeMessage``/``decodeMessage``, chakra/src/third_party/utils/protolib.py). The messages
are those of ``chakra_et.proto``.

What the twin replays of a node: a COMP_NODE's ``duration_micros`` (compute, stood in by a
timed wait), a COMM_COLL_NODE's ``comm_type`` and ``comm_size`` attributes (the collective of
that type, over that many bytes), a METADATA_NODE as a step without work, and every node's
``ctrl_deps`` and ``data_deps`` (a node starts once all of them have ended). Anything the twin
cannot replay as what it is (another node type, a collective the twin has no implementation
of) is refused with one line naming the file, the node and the reason: never dropped, never
stood in for by something else. So are broken files, dependency cycles and ranks that would
issue different collectives.
"""

from __future__ import annotations

import functools
import heapq
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from twin.errors import InputError
from twin.spec.loading import read_bytes
from twin.spec.protoschema import enum_values, message_classes
from twin.spec.schedule import MAX_GRADIENT_BYTES, MAX_PHASE_S, MAX_TRACE_NODES

SCHEMA = Path(__file__).with_name("chakra_et.proto")
# Limits of a trace file (docs/topology.md, "Limits of input files"): a node of a PyTorch trace
# is 100-500 bytes with its names, shapes and attributes, so MAX_TRACE_NODES of them fit many
# times over; every rank's program carries each dependency, so they are counted too.
MAX_TRACE_BYTES = 64 * 1024**2
MAX_TRACE_DEPS = 4 * MAX_TRACE_NODES
VARINT_BYTES = 10  # a 64-bit varint's longest encoding, where Chakra's reader gives up too
GZIP_MAGIC = b"\x1f\x8b"

# Each CollectiveCommType the twin replays, as the traffic/ collective that is that collective.
# REDUCE, GATHER, SCATTER and REDUCE_SCATTER_BLOCK have none: traces with them are refused.
REPLAYED = {"ALL_REDUCE": "allreduce", "ALL_GATHER": "allgather", "REDUCE_SCATTER": "reducescatter",
            "BROADCAST": "broadcast", "ALL_TO_ALL": "alltoall", "BARRIER": "barrier"}
WITHOUT_SIZE = ("BARRIER",)  # collectives that move no payload, so need no comm_size
INTEGER_VALUES = ("int32_val", "int64_val", "uint32_val", "uint64_val", "sint32_val", "sint64_val")


@functools.cache
def messages() -> dict[str, Any]:
    """The message classes of chakra_et.proto, by name (built once, on first use)."""
    return message_classes(SCHEMA)


@functools.cache
def enums() -> dict[str, dict[str, int]]:
    """The enums of chakra_et.proto: each value name with its number."""
    return enum_values(SCHEMA)


@dataclass(frozen=True)
class TraceNode:
    """One node as the twin replays it: ``kind`` is compute, metadata or collective."""

    id: int
    kind: str
    deps: tuple[int, ...] = ()
    duration_s: float = 0.0  # compute: real seconds
    comm: str = ""  # collective: its CollectiveCommType name
    size: int = 0  # collective: real bytes (comm_size)

    @property
    def op(self) -> str:
        """The traffic/ collective a collective node is replayed as."""
        return REPLAYED[self.comm]

    def describe(self) -> str:
        return self.comm if self.comm in WITHOUT_SIZE else f"{self.comm} of {self.size:,} bytes"

    def emulated_bytes(self, scale: float) -> int:
        """A collective's size in the emulation: shrunk by the bandwidth scale as a schedule's
        buckets are, at least one float32 element; a barrier moves none."""
        return 0 if self.comm in WITHOUT_SIZE else max(4, int(self.size * scale))


@dataclass(frozen=True)
class RankTrace:
    """One rank's trace: its nodes in dependency order (each after every node it depends on;
    among nodes free to go, the lowest id first), the order its collectives are issued in."""

    source: str
    nodes: tuple[TraceNode, ...]

    @property
    def collectives(self) -> list[TraceNode]:
        return [n for n in self.nodes if n.kind == "collective"]

    @property
    def compute_s(self) -> float:
        """The longest chain of compute through the dependencies (collectives taking no time):
        the iteration time of this rank on an infinitely fast fabric."""
        return critical_compute_s(self.nodes)


@dataclass(frozen=True)
class TraceJob:
    """One trace per rank, rank i the i-th; every rank issues the same collectives in order."""

    ranks: tuple[RankTrace, ...]

    @property
    def collectives(self) -> list[TraceNode]:
        return self.ranks[0].collectives

    @property
    def sources(self) -> list[str]:
        return [r.source for r in self.ranks]

    @property
    def compute_s(self) -> float:
        """The longest chain of compute of any rank."""
        return max(r.compute_s for r in self.ranks)

    def held_bytes(self, scale: float) -> int:
        """What each rank holds in memory in the emulation: a buffer of the largest collective,
        and a second one for an all-to-all's result."""
        largest = max((n.emulated_bytes(scale) for n in self.collectives), default=0)
        return largest * (2 if any(n.comm == "ALL_TO_ALL" for n in self.collectives) else 1)


def critical_compute_s(nodes: Sequence[TraceNode]) -> float:
    """Longest compute chain of nodes given in dependency order."""
    end: dict[int, float] = {}
    for n in nodes:
        start = max((end[d] for d in n.deps), default=0.0)
        end[n.id] = start + (n.duration_s if n.kind == "compute" else 0.0)
    return max(end.values(), default=0.0)


# ---- reading ------------------------------------------------------------------------------

def frames(data: bytes, source: str) -> Iterator[tuple[int, bytes]]:
    """(byte offset, message bytes) of each length-delimited message of ``data``."""
    pos = 0
    while pos < len(data):
        start, length, shift = pos, 0, 0
        while True:
            if pos >= len(data):
                raise InputError([f"{source}: byte {start}: the length of a message ends with the "
                                  f"file (a truncated varint)"])
            if pos - start >= VARINT_BYTES:
                raise InputError([f"{source}: byte {start}: a message length longer than "
                                  f"{VARINT_BYTES} bytes; not a Chakra trace"])
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if length > len(data) - pos:
            raise InputError([f"{source}: byte {start}: a message of {length:,} bytes, but "
                              f"{len(data) - pos:,} remain in the file (truncated, or not a "
                              f"Chakra trace)"])
        yield start, data[pos:pos + length]
        pos += length


def _parse(raw: bytes, name: str, source: str, where: str) -> Any:
    """``raw`` as the message ``name``, refused unless every field in it is one of its own."""
    if not raw:
        raise InputError([f"{source}: {where}: an empty message (Chakra's reader stops at one)"])
    msg = messages()[name]()
    try:
        msg.ParseFromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise InputError([f"{source}: {where}: not a Chakra {name} ({exc or 'cannot be parsed'})"]) from None
    foreign = sorted({f.field_number for f in UnknownFieldSet(msg)})
    if foreign:
        raise InputError([f"{source}: {where}: not a Chakra {name} (field "
                          f"{', '.join(map(str, foreign))} is not one of its own, or of another type)"])
    return msg


def _contents(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip, at most MAX_TRACE_BYTES either way."""
    data = read_bytes(path, MAX_TRACE_BYTES)
    if not data.startswith(GZIP_MAGIC):
        return data
    z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = z.decompress(data, MAX_TRACE_BYTES + 1)
    except zlib.error as exc:
        raise InputError([f"{path}: a damaged gzip file ({exc})"]) from None
    if len(out) > MAX_TRACE_BYTES:
        raise InputError([f"{path}: larger than {MAX_TRACE_BYTES // 1024**2} MiB uncompressed, the "
                          f"most the twin reads of a trace"])
    if not z.eof:
        raise InputError([f"{path}: a truncated gzip file"])
    return out


def read_trace(path: str | Path) -> RankTrace:
    """One rank's trace file, checked; its first problem is one line naming file, node, reason."""
    path = Path(path)
    source = str(path)
    nodes: list[TraceNode] = []
    seen_meta = False
    deps = 0
    for offset, raw in frames(_contents(path), source):
        if not seen_meta:
            _parse(raw, "GlobalMetadata", source, f"byte {offset}: the first message")
            seen_meta = True
            continue
        if len(nodes) == MAX_TRACE_NODES:
            raise InputError([f"{source}: more than {MAX_TRACE_NODES:,} nodes, the most the twin "
                              f"replays of one rank"])
        node = _node(_parse(raw, "Node", source, f"byte {offset}: message {len(nodes) + 2}"), source)
        deps += len(node.deps)
        if deps > MAX_TRACE_DEPS:
            raise InputError([f"{source}: node {node.id}: more than {MAX_TRACE_DEPS:,} dependencies "
                              f"in all, the most the twin replays of one rank"])
        nodes.append(node)
    if not seen_meta:
        raise InputError([f"{source}: empty; a Chakra trace starts with its GlobalMetadata"])
    if not nodes:
        raise InputError([f"{source}: no nodes after the GlobalMetadata"])
    trace = RankTrace(source, tuple(dependency_order(nodes, source)))
    longest = trace.compute_s
    if longest > MAX_PHASE_S:
        raise InputError([f"{source}: its longest chain of compute is {longest:,.0f} s; at most "
                          f"{MAX_PHASE_S:g} s (one hour), which the replay waits out each iteration"])
    return trace


def _node(msg: Any, source: str) -> TraceNode:
    """What the twin replays of one Node message, or the line saying why it cannot."""
    where = f"{source}: node {msg.id}"
    types = {v: k for k, v in enums()["NodeType"].items()}
    kind = types.get(msg.type)
    deps = tuple(dict.fromkeys([*msg.data_deps, *msg.ctrl_deps]))
    if kind == "COMP_NODE":
        if msg.duration_micros > MAX_PHASE_S * 1e6:
            raise InputError([f"{where}: duration_micros {msg.duration_micros:,} is longer than "
                              f"{MAX_PHASE_S:g} s (one hour)"])
        return TraceNode(msg.id, "compute", deps, duration_s=msg.duration_micros * 1e-6)
    if kind == "METADATA_NODE":
        return TraceNode(msg.id, "metadata", deps)
    if kind == "COMM_COLL_NODE":
        comm, size = _collective(msg, where)
        return TraceNode(msg.id, "collective", deps, comm=comm, size=size)
    if kind is None:
        raise InputError([f"{where}: type {msg.type} is not a Chakra NodeType"])
    raise InputError([f"{where}: a {kind}; the twin replays COMP_NODE, COMM_COLL_NODE and "
                      f"METADATA_NODE nodes only"])


def _integer_attr(msg: Any, name: str, where: str) -> Optional[int]:
    """The integer value of the node's attribute ``name``; None if the node has none."""
    found = [a for a in msg.attr if a.name == name]
    if not found:
        return None
    if len(found) > 1:
        raise InputError([f"{where}: attribute {name} is given {len(found)} times"])
    which = found[0].WhichOneof("value")
    if which not in INTEGER_VALUES:
        raise InputError([f"{where}: attribute {name} has no integer value"
                          + (f" (it has {which})" if which else "")])
    return int(getattr(found[0], which))


def _collective(msg: Any, where: str) -> tuple[str, int]:
    """(CollectiveCommType name, bytes) of a COMM_COLL_NODE, or the line saying what is wrong."""
    number = _integer_attr(msg, "comm_type", where)
    if number is None:
        raise InputError([f"{where}: a COMM_COLL_NODE without the comm_type attribute"])
    names = {v: k for k, v in enums()["CollectiveCommType"].items()}
    comm = names.get(number)
    if comm is None:
        raise InputError([f"{where}: comm_type {number} is not a Chakra CollectiveCommType"])
    if comm not in REPLAYED:
        raise InputError([f"{where}: comm_type {comm}: the twin has no {comm} collective (it "
                          f"replays {', '.join(REPLAYED)})"])
    size = _integer_attr(msg, "comm_size", where)
    if size is None:
        if comm in WITHOUT_SIZE:
            return comm, 0
        raise InputError([f"{where}: a {comm} without the comm_size attribute (bytes)"])
    if not 0 < size <= MAX_GRADIENT_BYTES:
        raise InputError([f"{where}: comm_size {size:,} is not between 1 byte and "
                          f"{MAX_GRADIENT_BYTES // 1024**4} TiB"])
    return comm, size


def dependency_order(nodes: list[TraceNode], source: str) -> list[TraceNode]:
    """The nodes, each after every node it depends on; among those free to go, the lowest id
    first (so ranks with the same graph issue their collectives in the same order). Node ids
    once each, dependencies on nodes of the trace, no cycle; else one line."""
    by_id: dict[int, TraceNode] = {}
    for n in nodes:
        if n.id in by_id:
            raise InputError([f"{source}: node {n.id}: the id is given to two nodes"])
        by_id[n.id] = n
    waiting = {n.id: len(n.deps) for n in nodes}
    dependents: dict[int, list[int]] = {n.id: [] for n in nodes}
    for n in nodes:
        for d in n.deps:
            if d not in by_id:
                raise InputError([f"{source}: node {n.id}: depends on node {d}, which the trace "
                                  f"does not have"])
            dependents[d].append(n.id)
    free = [i for i, k in waiting.items() if k == 0]
    heapq.heapify(free)
    out: list[TraceNode] = []
    while free:
        i = heapq.heappop(free)
        out.append(by_id[i])
        for j in dependents[i]:
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(free, j)
    if len(out) < len(nodes):
        raise InputError([f"{source}: node {_on_cycle(by_id, waiting)}: a dependency cycle runs "
                          f"through it"])
    return out


def _on_cycle(by_id: dict[int, TraceNode], waiting: dict[int, int]) -> int:
    """A node on a cycle among those never freed: each of them waits on another of them, so
    following such dependencies as many steps as there are nodes ends on a cycle."""
    stuck = {i for i, k in waiting.items() if k}
    node = min(stuck)
    for _ in range(len(stuck)):
        node = next(d for d in by_id[node].deps if d in stuck)
    return node


def read_job(paths: Sequence[str | Path]) -> TraceJob:
    """One trace file per rank (rank i reads the i-th), checked each and against each other:
    every rank must issue the same collectives (type and size) in the same order, or the ranks
    would wait on each other for ever."""
    if not paths:
        raise InputError(["a Chakra trace: no trace files given (one per rank)"])
    ranks = tuple(read_trace(p) for p in paths)
    first = ranks[0]
    want = first.collectives
    for r in ranks[1:]:
        got = r.collectives
        for k, (a, b) in enumerate(zip(want, got)):
            if (a.comm, a.size) != (b.comm, b.size):
                raise InputError([f"{r.source}: node {b.id}: collective {k + 1} is {b.describe()}, "
                                  f"but collective {k + 1} of {first.source} (node {a.id}) is "
                                  f"{a.describe()}; every rank issues the same collectives in the "
                                  f"same order"])
        if len(got) != len(want):
            raise InputError([f"{r.source}: {len(got)} collectives, but {first.source} has "
                              f"{len(want)}; every rank issues the same collectives in the same "
                              f"order"])
    return TraceJob(ranks)
