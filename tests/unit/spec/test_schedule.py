"""Training schedules: from a model description, from a Chakra trace, from a file; and the replay."""

import json
import threading

import numpy as np
import pytest

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
    assert exc.value.problems[0].startswith(f"{f}: backward:")


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
    out = {}

    def rank(r):
        comm = Comm(r, ranks, timeout=10)
        bufs = [np.zeros(10_000, dtype=np.float32) for _ in range(4)]
        out[r] = run_iteration(comm, sched, bufs)
        comm.close()
    ts = [threading.Thread(target=rank, args=(r,)) for r in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert all(o["wrong"] == 0 for o in out.values())
    for o in out.values():
        assert o["iteration_s"] >= 0.17 - 1e-3
        assert o["exposed_s"] == pytest.approx(o["iteration_s"] - 0.17)
        assert o["comm_s"] > 0
    json.dumps(out)
