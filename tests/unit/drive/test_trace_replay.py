"""A Chakra trace handed to the ranks: each rank its own graph, sizes at the emulation's scale,
compute in host time, in command-line arguments Linux takes; and ``twin replay`` refusing a bad
trace before anything is brought up."""

from __future__ import annotations

import json

import pytest

from twin.cli import main as cli
from twin.drive.replay import ARG_PART_CHARS, graph_arguments, graph_of, run_trace
from twin.emulation.state import TwinState, WorkerInfo
from twin.errors import TwinError
from twin.spec.chakra import MAX_TRACE_NODES, read_job
from twin.spec.chakra_write import collective, compute, node, write_trace


def two_ranks(tmp_path):
    nodes = [compute(5, 40_000), collective(6, "ALL_REDUCE", 1_000_000, [5]),
             node(7, "METADATA_NODE", data_deps=[6]), collective(8, "BARRIER", deps=[7]),
             compute(9, 10_000, [5])]
    return [write_trace(tmp_path / f"t.{r}.et", nodes) for r in range(2)]


def test_each_rank_gets_its_graph_with_indices_scaled_sizes_and_host_time(tmp_path):
    job = read_job(two_ranks(tmp_path))
    g = graph_of(job, 1, 1e-3, lambda s: 4 * s)  # time dilation 4
    assert g["nodes"] == [["compute", pytest.approx(0.16), []], ["allreduce", 1000, [0]],
                          ["metadata", 0, [1]], ["barrier", 0, [2]], ["compute", pytest.approx(0.04), [0]]]
    assert g["compute_s"] == pytest.approx(0.2)  # nodes 5 then 9


def test_a_graph_goes_in_parts_each_within_one_argument_and_joins_back():
    graph = {"nodes": [["compute", 0.5, [i - 1] if i else []] for i in range(20_000)]}
    argv = graph_arguments(graph)
    parts = argv[1::2]
    assert argv[::2] == ["--graph"] * len(parts) and len(parts) > 1
    assert all(len(p) <= ARG_PART_CHARS for p in parts)
    assert json.loads("".join(parts)) == graph


def test_the_largest_trace_fits_a_command_line(tmp_path):
    """MAX_TRACE_NODES nodes with four dependencies each: within Linux's 2 MiB of arguments."""
    n = MAX_TRACE_NODES
    nodes = [compute(i, 3_600_000_000 // n, range(max(0, i - 4), i)) for i in range(n)]
    job = read_job([write_trace(tmp_path / "big.et", nodes)])
    size = sum(len(a) + 1 for a in graph_arguments(graph_of(job, 0, 1.0, lambda s: 100 * s)))
    assert size < 1024**2


def test_one_trace_per_rank_or_no_replay(tmp_path):
    job = read_job(two_ranks(tmp_path)[:1])
    state = TwinState(run_id="r", topology="t", topology_file="t.yaml", mechanism="m", datapath="d",
                      controller="none", scale="s", owner_pid=1, started=0.0,
                      workers=[WorkerInfo(name=n, site="a", index=i, ip="10.0.0.1", mac="m",
                                          switch="s", port=i) for i, n in enumerate(("w1", "w2"))])
    with pytest.raises(TwinError, match=r"replay: 1 trace file\(s\) for 2 ranks \(w1, w2\)"):
        run_trace(state, job, "ring", 1.0)


def test_twin_replay_refuses_a_bad_trace_before_bringing_anything_up(tmp_path, capsys, monkeypatch):
    from twin.cli import collective as collective_cli
    monkeypatch.setattr(collective_cli, "twin_for", lambda *a, **k: pytest.fail("brought up"))
    good, _ = two_ranks(tmp_path)
    bad = write_trace(tmp_path / "bad.et", [compute(1, 5), collective(2, "GATHER", 64, [1])])
    assert cli.main(["replay", str(good), str(bad), "--topology", "x.yaml"]) == 2
    assert capsys.readouterr().err == (f"{bad}: node 2: comm_type GATHER: the twin has no GATHER "
                                       f"collective (it replays ALL_REDUCE, ALL_GATHER, "
                                       f"REDUCE_SCATTER, BROADCAST, ALL_TO_ALL, BARRIER)\n")
    assert cli.main(["replay", str(good), "--iterations", "0"]) == 1


def test_twin_validate_reads_a_trace_as_replay_does(tmp_path, capsys):
    good, _ = two_ranks(tmp_path)
    assert cli.main(["validate", str(good)]) == 0
    assert capsys.readouterr().out == (f"{good}: ok (Chakra trace: 5 nodes, 2 collectives of 1.0 MiB, "
                                       f"0.050 s of compute on its longest chain)\n")
    (tmp_path / "cut.et").write_bytes(good.read_bytes()[:-3])
    assert cli.main(["validate", str(tmp_path / "cut.et")]) == 2
    assert "remain in the file (truncated, or not a Chakra trace)" in capsys.readouterr().err
