"""A campaign whose ``schedule:`` is a Chakra trace: checked with the campaign before anything
starts, replayed as the trace at every point and on the single-site reference, one row each."""

from __future__ import annotations

import csv

import pytest

from tests.locations import TOPOS
from twin.drive.replay import IterationResult
from twin.errors import InputError
from twin.experiments import campaign as campaign_mod
from twin.spec.campaign import load_campaign_spec
from twin.spec.chakra import TraceJob
from twin.spec.chakra_write import collective, compute, write_trace


def traces(folder, ranks=4, comm="ALL_REDUCE"):
    nodes = [compute(1, 20_000), collective(2, comm, 8_000_000, [1]), compute(3, 5_000, [2])]
    return [write_trace(folder / f"step.{r}.et", nodes).name for r in range(ranks)]


def campaign(tmp_path, files, sweep="algo: [ring, hier]"):
    f = tmp_path / "c.yaml"
    f.write_text(f"name: t\ntopology: {TOPOS}/ci-2site.yaml\niterations: 2\n"
                 f"schedule: {{chakra: [{', '.join(files)}]}}\nsweep:\n  {sweep}\n")
    return f


def problems(f) -> list[str]:
    with pytest.raises(InputError) as exc:
        load_campaign_spec(f)
    return [p.removeprefix(f"{f}: ") for p in exc.value.problems]


def test_the_trace_files_are_found_beside_the_campaign_and_read(tmp_path):
    spec, _ = load_campaign_spec(campaign(tmp_path, traces(tmp_path)))
    assert isinstance(spec.job, TraceJob) and len(spec.job.ranks) == 4
    assert spec.job.sources[0] == str(tmp_path / "step.0.et")


def test_a_bad_trace_is_reported_at_the_campaigns_schedule_line(tmp_path):
    f = campaign(tmp_path, traces(tmp_path, comm="GATHER"))
    (p,) = problems(f)
    assert p.startswith(f"line 4: schedule.chakra: {tmp_path / 'step.0.et'}: node 2: comm_type GATHER: "
                        f"the twin has no GATHER collective")


def test_one_trace_per_rank_of_the_job_and_no_overlap_swept(tmp_path):
    assert problems(campaign(tmp_path, traces(tmp_path, ranks=2))) == [
        "line 4: schedule.chakra: 2 trace files for a job of 4 ranks on ci-2site; one file per rank"]
    # with interference the last worker of each site carries it: two ranks then
    load_campaign_spec(campaign(tmp_path, traces(tmp_path, ranks=2), "interference: [false, true]"))
    assert problems(campaign(tmp_path, traces(tmp_path), "overlap: [true, false]")) == [
        "line 6: sweep.overlap: a Chakra trace's dependencies decide what overlaps; overlap is swept "
        "with schedules only"]


def test_a_schedule_or_a_trace_each_reports_its_own_problems(tmp_path):
    f = tmp_path / "c.yaml"
    top = f"name: t\ntopology: {TOPOS}/ci-2site.yaml\n"
    f.write_text(top + "schedule: {chakra: 5}\nsweep: {algo: [ring]}\n")
    assert problems(f) == ["line 3: schedule.chakra: must be a list of trace files, one per rank"]
    f.write_text(top + "schedule: {forward: 1s}\nsweep: {algo: [ring]}\n")
    assert problems(f) == ["line 3: schedule.backward: Field required",
                           "line 3: schedule.buckets: Field required"]


def test_every_point_and_the_reference_replay_the_trace(tmp_path, monkeypatch):
    c = campaign_mod.load_campaign(campaign(tmp_path, traces(tmp_path)))
    ran = []

    class State:
        workers: list = []

    monkeypatch.setattr(campaign_mod.runtime, "up", lambda topo, *a: (None, State()))
    monkeypatch.setattr(campaign_mod.runtime, "down", lambda: None)

    def fake_trace(state, job, algo, scale, iterations, timeout=60.0, workers=None):
        ran.append((algo, len(job.ranks), scale))
        took = 0.1 if algo == "ring" else 0.08
        return [IterationResult(k, took, job.compute_s, 0.05, took - job.compute_s, -1)
                for k in range(iterations)]
    import twin.drive.replay as replay_mod
    monkeypatch.setattr(replay_mod, "run_trace", fake_trace)
    out = tmp_path / "rows.csv"
    assert campaign_mod.run(c, out) == (2, 0)
    assert ran == [("ring", 4, 1e-3), ("ring", 4, 1e-3), ("hier", 4, 1e-3)]  # reference first
    rows = list(csv.DictReader(out.open()))
    assert [(r["algo"], r["status"], r["overlap"]) for r in rows] == [("ring", "ok", ""), ("hier", "ok", "")]
    assert rows[1]["compute_s"] == "0.025" and rows[1]["gradient_bytes_emulated"] == "8000"
    assert rows[1]["efficiency"] == "1.25" and rows[1]["model_iteration_s"] == ""
    assert campaign_mod.estimate_seconds(c, c.points()) > 0
