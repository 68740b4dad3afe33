"""Chakra execution traces: read as Chakra writes them, and every bad trace refused in one line
naming the file, the node or byte, and the reason."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.errors import InputError, TwinError
from twin.spec import chakra
from twin.spec.chakra import MAX_TRACE_NODES, read_job, read_trace
from twin.spec.chakra_write import collective, compute, encode, frame, node, varint, write_trace


def one_line(exc: pytest.ExceptionInfo) -> str:
    assert len(exc.value.problems) == 1
    return exc.value.problems[0]


def step(first: int = 1) -> list:
    """Forward compute, an all-reduce after it beside more compute, an all-gather after both."""
    return [compute(first, 20_000), collective(first + 1, "ALL_REDUCE", 1 << 20, [first]),
            compute(first + 2, 30_000, [first]),
            collective(first + 3, "ALL_GATHER", 4096, [first + 1, first + 2]),
            collective(first + 4, "BARRIER", deps=[first + 3])]


def test_a_written_trace_reads_back_in_dependency_order(tmp_path):
    nodes = step()
    nodes.reverse()  # the file's order is not the replay's
    trace = read_trace(write_trace(tmp_path / "t.0.et", nodes))
    assert [n.id for n in trace.nodes] == [1, 2, 3, 4, 5]
    assert [(n.comm, n.size, n.op) for n in trace.collectives] == [
        ("ALL_REDUCE", 1 << 20, "allreduce"), ("ALL_GATHER", 4096, "allgather"),
        ("BARRIER", 0, "barrier")]
    assert trace.nodes[3].deps == (2, 3)
    assert trace.compute_s == pytest.approx(0.05)  # 20 ms, then 30 ms; the collectives take none


def test_the_wire_format_is_chakras_field_for_field(tmp_path):
    """Bytes laid out by hand from upstream's et_def.proto field numbers, not by our schema."""
    meta = b"\x0a\x05" + b"0.0.4"  # GlobalMetadata.version = 1 (string)
    comp = b"\x08\x07" + b"\x18\x04" + b"\x38\xfa\x01"  # id 7, type COMP_NODE, duration 250 us
    attr_type = b"\x0a\x09comm_type" + b"\x48\x07"  # name, int64_val = 9: REDUCE_SCATTER
    attr_size = b"\x0a\x09comm_size" + b"\x48\x80\x08"  # comm_size 1024
    coll = (b"\x08\x08" + b"\x18\x07" + b"\x22\x01\x07"  # id 8, COMM_COLL_NODE, ctrl_deps [7]
            + b"\x52" + bytes([len(attr_type)]) + attr_type
            + b"\x52" + bytes([len(attr_size)]) + attr_size)
    f = tmp_path / "hand.et"
    f.write_bytes(b"".join(varint(len(m)) + m for m in (meta, comp, coll)))
    trace = read_trace(f)
    assert trace.nodes[0].duration_s == pytest.approx(250e-6)
    assert (trace.nodes[1].comm, trace.nodes[1].size, trace.nodes[1].deps) == ("REDUCE_SCATTER", 1024, (7,))


def test_gzip_traces_are_read_as_chakras_reader_reads_them(tmp_path):
    f = tmp_path / "t.0.et.gz"
    f.write_bytes(gzip.compress(encode(step())))
    assert len(read_trace(f).collectives) == 3


def test_a_job_is_one_trace_per_rank_issuing_the_same_collectives(tmp_path):
    a = write_trace(tmp_path / "t.0.et", step())
    b = write_trace(tmp_path / "t.1.et", step(first=100))  # other ids, the same collectives
    job = read_job([a, b])
    assert len(job.ranks) == 2 and len(job.collectives) == 3


def test_ranks_disagreeing_on_the_collectives_are_refused(tmp_path):
    a = write_trace(tmp_path / "t.0.et", step())
    other = step()
    other[3] = collective(4, "ALL_TO_ALL", 4096, [2, 3])
    b = write_trace(tmp_path / "t.1.et", other)
    with pytest.raises(InputError) as exc:
        read_job([a, b])
    assert one_line(exc) == (f"{b}: node 4: collective 2 is ALL_TO_ALL of 4,096 bytes, but "
                             f"collective 2 of {a} (node 4) is ALL_GATHER of 4,096 bytes; every "
                             f"rank issues the same collectives in the same order")
    c = write_trace(tmp_path / "t.2.et", step()[:3])
    with pytest.raises(InputError, match="1 collectives, but .* has 3; every rank"):
        read_job([a, c])
    bigger = step()
    bigger[1] = collective(2, "ALL_REDUCE", 2 << 20, [1])
    with pytest.raises(InputError, match="collective 1 is ALL_REDUCE of 2,097,152 bytes"):
        read_job([a, write_trace(tmp_path / "t.3.et", bigger)])


META = frame(chakra.messages()["GlobalMetadata"](version="0.0.4"))


@pytest.mark.parametrize("data,reason", [
    (b"", "empty; a Chakra trace starts with its GlobalMetadata"),
    (META, "no nodes after the GlobalMetadata"),
    (b"\x85", "byte 0: the length of a message ends with the file (a truncated varint)"),
    (META + b"\xff" * 11, f"byte {len(META)}: a message length longer than 10 bytes; not a Chakra trace"),
    (META + b"\x20\x08\x01", f"byte {len(META)}: a message of 32 bytes, but 2 remain in the file "
                             f"(truncated, or not a Chakra trace)"),
    (frame(compute(1, 5)), "byte 0: the first message: not a Chakra GlobalMetadata (Error parsing "
                           "message with type 'ChakraProtoMsg.GlobalMetadata': Wire format was corrupt)"),
    (frame(chakra.messages()["Node"](id=1, type=4, duration_micros=5)),
     "byte 0: the first message: not a Chakra GlobalMetadata (field 1, 3, 7 is not one of its own, "
     "or of another type)"),
    (META + META, f"byte {len(META)}: message 2: not a Chakra Node (field 1 is not one of its own, "
                  f"or of another type)"),
    (META + b"\x00", f"byte {len(META)}: message 2: an empty message (Chakra's reader stops at one)"),
    (META + b"\x02\x0a\xff", f"byte {len(META)}: message 2: not a Chakra Node (Error parsing "
                             f"message with type 'ChakraProtoMsg.Node': Wire format was corrupt)"),
])
def test_broken_files_are_one_line_naming_the_byte(tmp_path, data, reason):
    f = tmp_path / "bad.et"
    f.write_bytes(data)
    with pytest.raises(InputError) as exc:
        read_trace(f)
    assert one_line(exc) == f"{f}: {reason}"


@pytest.mark.parametrize("nodes,reason", [
    ([collective(3, 42, 1024)], "node 3: comm_type 42 is not a Chakra CollectiveCommType"),
    ([collective(3, "GATHER", 1024)], "node 3: comm_type GATHER: the twin has no GATHER collective "
                                      "(it replays ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER, BROADCAST, "
                                      "ALL_TO_ALL, BARRIER)"),
    ([collective(3, "REDUCE_SCATTER_BLOCK", 64)], "node 3: comm_type REDUCE_SCATTER_BLOCK: the twin "
                                                  "has no REDUCE_SCATTER_BLOCK collective (it replays "
                                                  "ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER, BROADCAST, "
                                                  "ALL_TO_ALL, BARRIER)"),
    ([node(3, "COMM_COLL_NODE", comm_type="ALL_REDUCE")],
     "node 3: a ALL_REDUCE without the comm_size attribute (bytes)"),
    ([node(3, "COMM_COLL_NODE", comm_size=8)], "node 3: a COMM_COLL_NODE without the comm_type attribute"),
    ([node(3, "COMM_COLL_NODE", comm_type="ALL_REDUCE", comm_size=0)],
     "node 3: comm_size 0 is not between 1 byte and 16 TiB"),
    ([node(3, "COMM_COLL_NODE", comm_type="ALL_REDUCE", comm_size=-5)],
     "node 3: comm_size -5 is not between 1 byte and 16 TiB"),
    ([node(3, "COMM_SEND_NODE")], "node 3: a COMM_SEND_NODE; the twin replays COMP_NODE, "
                                  "COMM_COLL_NODE and METADATA_NODE nodes only"),
    ([node(3, "INVALID_NODE", name="x")], "node 3: a INVALID_NODE; the twin replays COMP_NODE, "
                                          "COMM_COLL_NODE and METADATA_NODE nodes only"),
    ([compute(1, 5, [2]), compute(2, 5, [3]), compute(3, 5, [2])],
     "node 2: a dependency cycle runs through it"),
    ([compute(1, 5, [1])], "node 1: a dependency cycle runs through it"),
    ([compute(1, 5), compute(2, 5, [9])], "node 2: depends on node 9, which the trace does not have"),
    ([compute(1, 5), compute(1, 6)], "node 1: the id is given to two nodes"),
    ([compute(1, 3_600_000_001)], "node 1: duration_micros 3,600,000,001 is longer than 3600 s (one hour)"),
    ([compute(1, 3_000_000_000), compute(2, 3_000_000_000, [1])],
     "its longest chain of compute is 6,000 s; at most 3600 s (one hour), which the replay waits "
     "out each iteration"),
])
def test_nodes_the_twin_cannot_replay_are_one_line_naming_the_node(tmp_path, nodes, reason):
    f = write_trace(tmp_path / "t.0.et", nodes)
    with pytest.raises(InputError) as exc:
        read_trace(f)
    assert one_line(exc) == f"{f}: {reason}"


def test_a_non_integer_or_repeated_attribute_is_refused(tmp_path):
    n = collective(3, "ALL_REDUCE")
    n.attr.add(name="comm_size", string_val="1M")
    with pytest.raises(InputError, match=r"node 3: attribute comm_size has no integer value \(it has string_val\)"):
        read_trace(write_trace(tmp_path / "a.et", [n]))
    n = collective(3, "ALL_REDUCE", 64)
    n.attr.add(name="comm_type", int64_val=0)
    with pytest.raises(InputError, match="node 3: attribute comm_type is given 2 times"):
        read_trace(write_trace(tmp_path / "b.et", [n]))


def test_metadata_nodes_are_steps_without_work(tmp_path):
    trace = read_trace(write_trace(tmp_path / "t.et", [compute(1, 10), node(2, "METADATA_NODE", data_deps=[1]),
                                                         compute(3, 10, [2])]))
    assert [n.kind for n in trace.nodes] == ["compute", "metadata", "compute"]
    assert trace.compute_s == pytest.approx(20e-6)


def test_too_many_nodes_or_dependencies_are_refused(tmp_path):
    f = write_trace(tmp_path / "big.et", [compute(i, 1) for i in range(MAX_TRACE_NODES + 1)])
    with pytest.raises(InputError) as exc:
        read_trace(f)
    assert one_line(exc) == f"{f}: more than 8,192 nodes, the most the twin replays of one rank"
    many = [compute(i, 1) for i in range(100)]
    many += [compute(1000 + j, 1, range(100)) for j in range(400)]
    with pytest.raises(InputError, match=r"node 1327: more than 32,768 dependencies in all"):
        read_trace(write_trace(tmp_path / "deps.et", many))


def test_a_long_chain_is_ordered_without_recursion(tmp_path):
    n = MAX_TRACE_NODES
    nodes = [compute(i, 1, [i + 1] if i < n - 1 else []) for i in range(n)]
    trace = read_trace(write_trace(tmp_path / "chain.et", nodes))
    assert trace.nodes[0].id == n - 1 and trace.compute_s == pytest.approx(n * 1e-6)


def test_no_trace_files_and_unreadable_ones(tmp_path):
    with pytest.raises(InputError, match="no trace files given"):
        read_job([])
    with pytest.raises(InputError, match="cannot read file"):
        read_trace(tmp_path / "missing.et")
    (tmp_path / "z.et").write_bytes(b"\x1f\x8b" + b"junk")
    with pytest.raises(InputError, match="a damaged gzip file"):
        read_trace(tmp_path / "z.et")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_any_bytes_are_a_trace_or_one_line(tmp_path, data):
    f = tmp_path / "any.et"
    f.write_bytes(data)
    try:
        read_trace(f)
    except TwinError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(st.binary(max_size=60), max_size=8))
def test_any_framed_messages_are_a_trace_or_one_line(tmp_path, bodies):
    """Well-framed messages of arbitrary content reach the protobuf parser and the checks."""
    f = tmp_path / "framed.et"
    f.write_bytes(META + b"".join(varint(len(b)) + b for b in bodies))
    try:
        read_trace(f)
    except TwinError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["COMP_NODE", "COMM_COLL_NODE"]),
                               st.integers(-3, 12), st.lists(st.integers(0, 31), max_size=3)),
                     min_size=1, max_size=20))
def test_any_graph_of_nodes_is_ordered_or_one_line(tmp_path, spec):
    nodes = [node(i, t, duration_micros=5, comm_type=c if t == "COMM_COLL_NODE" else None,
                  comm_size=64 if t == "COMM_COLL_NODE" else None, data_deps=d)
             for i, t, c, d in spec]
    f = write_trace(tmp_path / "g.et", nodes)
    try:
        trace = read_trace(f)
    except TwinError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    place = {n.id: k for k, n in enumerate(trace.nodes)}
    assert all(place[d] < place[n.id] for n in trace.nodes for d in n.deps)
