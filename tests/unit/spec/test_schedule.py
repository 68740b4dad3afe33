"""Training schedules: from a model description, from a file; and the replay."""

import json

import numpy as np
import pytest

from tests.threads import in_threads
from traffic.comm import Comm, RankInfo
from traffic.train import run_iteration
from twin.errors import InputError
from twin.spec.schedule import Schedule, from_model, load_schedule


def test_from_model_splits_gradient_into_buckets():
    s = from_model(7e9, "bf16", compute_s=3.0, bucket=25 * 2**20, model_parallel=2)
    assert sum(s.buckets) == pytest.approx(7e9 * 2 / 2, abs=1)
    assert max(s.buckets) <= 25 * 2**20
    assert s.forward == pytest.approx(1.0) and s.backward == pytest.approx(2.0)


def test_scaling_shrinks_sizes_only():
    s = Schedule(forward="10ms", backward="20ms", buckets=["1G", "1G"])
    t = s.scaled(1e-3)
    assert t.buckets == [int(2**30 * 1e-3)] * 2 and t.forward == s.forward


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


# ---- limits of a schedule (docs/topology.md, "Limits of input files") -----------------------

from twin.spec.schedule import MAX_BUCKETS, MAX_GRADIENT_BYTES  # noqa: E402


def test_buckets_are_limited_by_what_fits_a_command_line(tmp_path):
    assert schedule_problems(tmp_path, f"forward: 1s\nbackward: 1s\nbuckets: {[1] * 2049}\n") == \
        ["line 3: buckets: 2049 buckets; at most 2048 (the schedule goes to every rank on its "
         "command line; use larger buckets)"]


def test_the_largest_schedule_fits_one_argument_of_the_ranks_command_line():
    """traffic.train gets the schedule as one argument; Linux takes 128 KiB (MAX_ARG_STRLEN)."""
    biggest = MAX_GRADIENT_BYTES // MAX_BUCKETS
    s = Schedule(forward=3600, backward=3600, optimizer=3600, buckets=[biggest] * MAX_BUCKETS,
                 ready=[1 / 3 + i * 1e-9 for i in range(MAX_BUCKETS)])
    payload = {"forward_s": s.forward, "backward_s": s.backward, "optimizer_s": s.optimizer,
               "buckets": s.buckets, "ready": s.ready, "overlap": True, "algo": "ring",
               "iterations": 100, "warmup": 1, "check": False}
    assert len(json.dumps(payload)) < 128 * 1024 - 4096


@pytest.mark.parametrize("text,reason", [
    ("model: {params: 1e30, compute: 1s}\n",
     "line 1: model.params: Input should be less than or equal to 4000000000000"),
    ("model: {params: .inf, compute: 1s}\n", "line 1: model.params: Input should be a finite number"),
    ("model: {params: 7e9, compute: 1s, bucket: 1K}\n",
     "line 1: model: 7e+09 bf16 parameters in buckets of 1,024 bytes make 13,671,875 buckets; "
     "at most 2048 (the schedule goes to every rank on its command line): use a larger bucket"),
    ("forward: 2h\nbackward: 1s\nbuckets: [1M]\n", "line 1: forward: unknown time unit in '2h' "
                                                  "(use s, ms, us, ns)"),
    ("forward: 7200s\nbackward: 1s\nbuckets: [1M]\n",
     "line 1: forward: '7200s' is longer than 3600 s (one hour), the longest phase of an "
     "iteration the replay waits out"),
    ("forward: 1s\nbackward: 1s\nbuckets: [1e999G]\n",
     "line 3: buckets: bucket 0: size '1e999G' is above 1 PiB, the largest the twin takes"),
    ("forward: 1s\nbackward: 1s\nbuckets: [1]\nready: [.nan]\n",
     "line 4: ready[0]: Input should be a finite number"),
])
def test_absurd_schedules_are_one_line_with_the_reason(tmp_path, text, reason):
    assert schedule_problems(tmp_path, text) == [reason]
