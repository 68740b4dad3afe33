"""Training schedules: from a model description, from a Chakra trace, from a file; and the replay."""

import json

import numpy as np
import pytest

from tests.threads import in_threads
from traffic.comm import Comm, RankInfo
from traffic.train import run_iteration
from twin.errors import InputError
from twin.spec.schedule import Schedule, from_chakra, from_model, load_schedule


def test_from_model_splits_gradient_into_buckets():
    s = from_model(7e9, "bf16", compute_s=3.0, bucket=25 * 2**20, model_parallel=2)
    assert sum(s.buckets) == pytest.approx(7e9 * 2 / 2, abs=1)
    assert max(s.buckets) <= 25 * 2**20
    assert s.forward == pytest.approx(1.0) and s.backward == pytest.approx(2.0)


def test_scaling_shrinks_sizes_only():
    s = Schedule(forward="10ms", backward="20ms", buckets=["1G", "1G"])
    t = s.scaled(1e-3)
    assert t.buckets == [int(2**30 * 1e-3)] * 2 and t.forward == s.forward


def test_chakra_trace():
    trace = {"nodes": [
        {"id": 0, "type": "COMP_NODE", "duration_micros": 4000},
        {"id": 1, "type": "COMM_COLL_NODE", "comm_size": 1000, "data_deps": [0]},
        {"id": 2, "type": "COMP_NODE", "duration_micros": 2000, "data_deps": [0]},
        {"id": 3, "type": "COMM_COLL_NODE", "comm_size": 3000, "data_deps": [2]},
    ]}
    s = from_chakra(trace)
    assert s.forward == pytest.approx(0.004) and s.backward == pytest.approx(0.002)
    assert s.buckets == [1000, 3000] and s.ready == [0.0, 1.0]


def test_chakra_cycle_and_empty_are_refused():
    with pytest.raises(ValueError, match="cycle"):
        from_chakra({"nodes": [{"id": 0, "type": "COMP_NODE", "data_deps": [1]},
                               {"id": 1, "type": "COMP_NODE", "data_deps": [0]}]})
    with pytest.raises(ValueError, match="nodes"):
        from_chakra({"nodes": []})


def test_bad_schedule_file_names_the_field(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("forward: 10ms\nbackward: -1s\nbuckets: [1M]\n")
    with pytest.raises(InputError) as exc:
        load_schedule(f)
    assert exc.value.problems == [f"{f}: line 2: backward: cannot read time '-1s'"]


def test_model_shortcut_file(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("model: {params: 1e9, dtype: fp32, compute: 900ms, bucket: 100M}\n")
    s = load_schedule(f)
    assert sum(s.buckets) == 4_000_000_000


@pytest.mark.parametrize("overlap", [True, False])
def test_replay_over_loopback_reduces_exactly_and_times_the_phases(overlap):
    ranks = [RankInfo(r, "127.0.0.1", "s", 21500 + r + (10 if overlap else 0)) for r in range(3)]
    sched = {"forward_s": 0.05, "backward_s": 0.1, "optimizer_s": 0.02, "algo": "ring",
             "overlap": overlap, "check": True}

    def rank(r):
        comm = Comm(r, ranks, timeout=10)
        try:
            return run_iteration(comm, sched, [np.zeros(10_000, dtype=np.float32) for _ in range(4)])
        finally:
            comm.close()
    out = in_threads(rank, range(3), timeout=30)
    assert all(o["wrong"] == 0 for o in out.values())
    for o in out.values():
        assert o["iteration_s"] >= 0.17 - 1e-3
        assert o["exposed_s"] == pytest.approx(o["iteration_s"] - 0.17)
        assert o["comm_s"] > 0
    json.dumps(out)


def schedule_problems(tmp_path, text) -> list[str]:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as exc:
        load_schedule(f)
    return [p.removeprefix(f"{f}: ") for p in exc.value.problems]


def test_a_bad_model_description_names_its_fields_and_lines(tmp_path):
    assert schedule_problems(tmp_path, "model:\n  params: 7e9\n  dtype: fp8\n  compute: 1s\n"
                                       "  optimizer: 2s\n") == \
        ["line 3: model.dtype: 'fp8' is not bf16, fp16, fp32"]
    assert schedule_problems(tmp_path, "model: {params: 7e9, compute: 1s, optimizer: 2s}\n") == \
        ["line 1: model: optimizer is longer than compute, which includes it"]
    assert schedule_problems(tmp_path, "model: {params: 7e9, compute: 1s}\nforward: 1s\n") == \
        ["(top level): give either model or forward, backward and buckets, not both"]


def test_ready_fractions_match_the_buckets(tmp_path):
    assert schedule_problems(tmp_path, "forward: 1s\nbackward: 1s\nbuckets: [1M, 1M]\n"
                                       "ready: [0.5]\n") == \
        ["line 4: ready: 1 fractions for 2 buckets"]
    assert schedule_problems(tmp_path, "forward: 1s\nbackward: 1s\nbuckets: [1M]\nready: [2]\n") == \
        ["line 4: ready: fractions must be in [0, 1]"]


def test_a_bad_chakra_trace_is_one_line_at_its_nodes(tmp_path):
    assert schedule_problems(tmp_path, "nodes: [{type: COMP_NODE}]\n") == \
        ["line 1: nodes: a node has no 'id'"]
    assert schedule_problems(tmp_path, "nodes: [{id: 0, type: COMP_NODE, duration_micros: 5}]\n") == \
        ["line 1: nodes: the trace has no COMM_COLL node"]
    assert schedule_problems(tmp_path, "nodes: [{id: 0, type: COMM_COLL_NODE, comm_size: 0}]\n") == \
        ["line 1: nodes: the trace's buckets: bucket sizes must be positive"]


def test_a_chakra_trace_file(tmp_path):
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"nodes": [
        {"id": 0, "type": "COMP_NODE", "duration_micros": 4000},
        {"id": 1, "type": "COMM_COLL_NODE", "comm_size": 1000, "data_deps": [0]}]}))
    s = load_schedule(f)
    assert s.forward == pytest.approx(0.004) and s.buckets == [1000]
