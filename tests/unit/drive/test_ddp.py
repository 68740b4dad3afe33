"""twin.drive.ddp: the ranks' result lines combined into one run, failures named, and the run's
schedule for the replay and the model."""

import json

import pytest

from twin.drive.ddp import (
    DdpConfig,
    combine,
    outcome_errors,
    rank_result,
    replay_schedule,
    timed_window,
)
from twin.drive.everywhere import RankOutcome
from twin.errors import TwinError
from twin.model.fabric import Fabric
from twin.model.iteration import Iteration, predict


def result(rank: int, iteration_s: list[float], digest: str = "ab", **over) -> dict:
    """One rank's line as traffic.ddp prints it."""
    r = {"rank": rank, "world_size": 2, "params": 1050624, "dtype": "fp32", "gradient_bytes": 4202496,
         "bucket_cap_bytes": 1 << 20, "buckets": [1050624] * 4, "threads": 1, "batch": 8,
         "forward_s": [0.01] * len(iteration_s), "backward_s": [0.02] * len(iteration_s),
         "optimizer_s": [0.003 + 0.001 * rank] * len(iteration_s), "iteration_s": iteration_s,
         "compute_forward_s": [0.010, 0.012, 0.011], "compute_backward_s": [0.020, 0.030, 0.025],
         "loss_first": 1.0 + rank, "loss_last": 0.5 + rank, "param_sha256": digest,
         "timed_start_unix": 100.0 + rank, "timed_end_unix": 110.0 + rank}
    r.update(over)
    return r


def test_the_last_json_line_is_the_ranks_result():
    out = "warming up\n" + json.dumps({"note": 1}) + "\n" + json.dumps(result(0, [0.5])) + "\n"
    assert rank_result(out)["rank"] == 0


@pytest.mark.parametrize("out, says", [
    ("", "no result line"),
    ("Traceback ...\n", "no result line"),
    (json.dumps({"error": "rank 1: ddp: connection reset"}) + "\n", "connection reset"),
])
def test_no_result_or_an_error_line_is_an_error(out, says):
    with pytest.raises(TwinError, match=says):
        rank_result(out)


def test_each_iteration_is_its_slowest_rank_and_compute_is_a_median_of_slowest_ranks():
    run = combine([result(0, [0.50, 0.70, 0.60]), result(1, [0.55, 0.65, 0.62])], 0.2, True)
    assert run.iteration_s == (0.55, 0.70, 0.62)
    assert run.median_iteration_s == 0.62
    assert run.forward_s == 0.011 and run.backward_s == 0.025  # the ranks' compute is the same here
    assert run.optimizer_s == pytest.approx(0.004)  # rank 1's, the slower
    assert run.compute_s == pytest.approx(0.040)
    assert run.in_sync and run.ranks == 2 and run.buckets == (1050624,) * 4
    assert (run.loss_first, run.loss_last) == (1.5, 1.0)
    assert (run.host_cpu_saturated_share, run.host_bound) == (0.2, True)


def test_replicas_with_different_parameters_are_out_of_sync():
    assert not combine([result(0, [0.5]), result(1, [0.5], digest="cd")]).in_sync


def test_ranks_that_disagree_on_the_buckets_or_have_no_compute_iterations_are_refused():
    with pytest.raises(TwinError, match="disagree"):
        combine([result(0, [0.5]), result(1, [0.5], buckets=[4202496])])
    with pytest.raises(TwinError, match="compute-only"):
        combine([result(0, [0.5], compute_forward_s=[], compute_backward_s=[])])


def test_the_timed_window_runs_from_the_first_start_to_the_last_end():
    assert timed_window([result(0, [0.5]), result(1, [0.5])]) == (100.0, 111.0)


def test_a_failed_rank_is_named_by_its_error_line_else_why_it_was_killed_else_its_last_line():
    ok = RankOutcome(0, "w0", 0, json.dumps(result(0, [0.5])), "")
    assert outcome_errors([ok]) is None
    err = RankOutcome(1, "w1", 1, json.dumps({"error": "rank 1: ddp: timed out"}), "")
    killed = RankOutcome(2, "w2", None, "", "", why_killed="killed 10 s after rank 1 failed")
    crashed = RankOutcome(3, "w3", 1, "", "Traceback\nMemoryError")
    assert outcome_errors([ok, err, killed, crashed]) == (
        "rank 1 (w1): rank 1: ddp: timed out; rank 2 (w2): killed 10 s after rank 1 failed; "
        "rank 3 (w3): MemoryError")


def test_the_replay_schedule_is_ddps_buckets_and_the_measured_compute():
    run = combine([result(0, [0.5]), result(1, [0.6])])
    sched = replay_schedule(run)
    assert sched.buckets == [1050624] * 4
    assert (sched.forward, sched.backward, sched.optimizer) == (0.011, 0.025, run.optimizer_s)
    assert sched.overlap and sched.ready is None  # produced evenly: the MLP's layers are equal
    assert sched.compute == pytest.approx(run.compute_s)


def test_the_model_of_the_schedule_pays_the_exposed_all_reduce_of_the_last_bucket():
    sched = replay_schedule(combine([result(0, [0.5])]))
    one_site = Fabric(1, 4, 400e6, 1600e6, 2e-4, 2e-4)
    p = predict("ring", one_site, Iteration.of(sched))
    last = 2 * 3 * (2e-4 + 1050624 / 4 * 8 / 400e6)  # 2(p-1) steps of S/p, the last bucket
    assert p.iteration >= sched.compute + last - 1e-9
    assert p.communication == pytest.approx(4 * last)


def test_the_config_is_the_command_every_worker_runs():
    c = DdpConfig(width=256, depth=3, batch=16, bucket_cap_mb=0.5, iters=4)
    argv = c.argv(timeout=120)
    assert argv[:3] == ["python3", "-m", "traffic.ddp"]
    opts = dict(zip(argv[3::2], argv[4::2]))
    assert opts == {"--width": "256", "--depth": "3", "--batch": "16", "--bucket-cap-mb": "0.5",
                    "--iters": "4", "--warmup": "2", "--compute-iters": "3", "--threads": "1",
                    "--timeout": "120"}
    assert c.params == 3 * 257 * 256  # Linear(256, 256): weight and bias
