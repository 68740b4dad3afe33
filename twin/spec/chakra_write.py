"""Writing Chakra execution traces as Chakra writes them (see twin.spec.chakra for the format).

For traces made by hand or by a script, one file per rank, that Chakra's own tools and the
twin's ``replay`` read alike; the tests make theirs with it too. ``node`` builds any node, also
one the twin refuses (an unknown comm_type, a missing comm_size): a writer that could only
write good traces could not test the reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Union

from twin.spec.chakra import enums, messages

VERSION = "0.0.4"  # the schema version Chakra's converters put in GlobalMetadata


def varint(n: int) -> bytes:
    """``n`` (>= 0) as a protobuf varint: 7 bits a byte, lowest first."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def frame(message: Any) -> bytes:
    """One message with its length in front, as Chakra's ``encodeMessage`` writes it."""
    raw = message.SerializeToString()
    return varint(len(raw)) + raw


def node(id: int, type: str = "COMP_NODE", *, duration_micros: int = 0,
         comm_type: Union[str, int, None] = None, comm_size: Optional[int] = None,
         data_deps: Iterable[int] = (), ctrl_deps: Iterable[int] = (), name: str = "") -> Any:
    """A Chakra ``Node`` message; ``comm_type`` by CollectiveCommType name or number, and
    ``comm_type``/``comm_size`` written as Chakra's converters write them (int64 attributes)."""
    msg = messages()["Node"](id=id, name=name or f"node{id}", type=enums()["NodeType"][type],
                             duration_micros=duration_micros, data_deps=list(data_deps),
                             ctrl_deps=list(ctrl_deps))
    if comm_type is not None:
        number = enums()["CollectiveCommType"][comm_type] if isinstance(comm_type, str) else comm_type
        msg.attr.add(name="comm_type", int64_val=number)
    if comm_size is not None:
        msg.attr.add(name="comm_size", int64_val=comm_size)
    return msg


def compute(id: int, micros: int, deps: Iterable[int] = ()) -> Any:
    """A COMP_NODE of ``micros`` microseconds after ``deps`` (data dependencies)."""
    return node(id, "COMP_NODE", duration_micros=micros, data_deps=deps)


def collective(id: int, comm_type: str, size: int = 0, deps: Iterable[int] = ()) -> Any:
    """A COMM_COLL_NODE of ``size`` bytes (none for a barrier) after ``deps``."""
    return node(id, "COMM_COLL_NODE", comm_type=comm_type, comm_size=size or None, data_deps=deps)


def encode(nodes: Iterable[Any], version: str = VERSION) -> bytes:
    """A whole trace file's bytes: the GlobalMetadata, then every node."""
    meta = messages()["GlobalMetadata"](version=version)
    return frame(meta) + b"".join(frame(n) for n in nodes)


def write_trace(path: Union[str, Path], nodes: Iterable[Any], version: str = VERSION) -> Path:
    """Write one rank's trace file."""
    path = Path(path)
    path.write_bytes(encode(nodes, version))
    return path
