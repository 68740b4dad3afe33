"""Reliability suite: faults during a run, campaign interruption, least privilege.

Run alone with `pytest -m reliability`; CI runs it with everything else.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.machine import ns_run
from tests.locations import ROOT, TOPOS
from twin.drive.benchmark import run_collective
from twin.emulation import runtime
from twin.errors import TwinError
from twin.experiments.campaign import diagnose, load_campaign
from twin.host import rundirs
from twin.measure.ping import parse_ping_rtts
from twin.spec.topology import load_topology

pytestmark = pytest.mark.reliability
# the twin command of this checkout (the console script of a virtualenv imports the package it
# was installed from); run from ROOT so that this checkout is the one imported
TWIN = [sys.executable, "-m", "twin.cli.main"]


def cross_site_pings(state, count=5):
    a = state.worker("beijing1")
    b = state.worker("wuhan1")
    return parse_ping_rtts(ns_run(a.pid, ["ping", "-n", "-c", str(count), "-i", "0.1", "-W", "1",
                                          b.ip]).stdout)


def test_controller_and_delay_line_deaths_are_reported_and_recoverable(clean_machine):
    topo = load_topology(TOPOS / "ci-2site.yaml")
    _, state = runtime.up(topo, str(TOPOS / "ci-2site.yaml"), "detpath", progress=lambda s: None)
    try:
        assert runtime.health(state) == []
        os.kill(state.controller_pid, signal.SIGKILL)
        time.sleep(0.5)
        problems = runtime.health(state)
        assert len(problems) == 1 and "controller detpath" in problems[0] and "dead" in problems[0]
        # the run's own folder keeps the logs, and the report says where to read them
        logs = Path(state.log_dir)
        assert logs == rundirs.runs_dir() / state.run_id
        assert "WAN ports verified by LLDP" in (logs / "controller.log").read_text()
        assert str(logs / "controller.log") in problems[0]
        # one log per delay line (where netem carries the links there are none)
        assert len(list(logs.glob("delayline-*.log"))) == sum(1 for w in state.wan if w.delayline)
        assert len(cross_site_pings(state)) == 5, "installed flows must keep forwarding (fail-secure)"
        out = subprocess.run([*TWIN, "inspect"], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 1 and "problem: controller detpath" in out.stderr
        runtime.restart_controller()
        state = runtime.load_state()
        assert runtime.health(state) == [] and len(cross_site_pings(state)) == 5
        if state.wan[0].delayline:  # netem links have no process that could die
            os.kill(state.wan[0].delayline.pid, signal.SIGKILL)
            time.sleep(0.3)
            assert any("delay line of beijing-wuhan" in p for p in runtime.health(state))
            assert cross_site_pings(state, 3) == []
    finally:
        runtime.down()


def test_controller_listens_on_loopback_only_and_workers_are_unprivileged(clean_machine):
    topo = load_topology(TOPOS / "ci-2site.yaml")
    _, state = runtime.up(topo, str(TOPOS / "ci-2site.yaml"), "baseline", progress=lambda s: None)
    try:
        listen = subprocess.run(["ss", "-ltnH", "sport", "= :6653"], capture_output=True, text=True).stdout
        addrs = {line.split()[3].rsplit(":", 1)[0] for line in listen.splitlines() if line.strip()}
        assert addrs == {"127.0.0.1"}
        for w in state.workers:
            host = subprocess.run(["docker", "inspect", "-f",
                                   "{{.HostConfig.Privileged}} {{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}}",
                                   w.container], capture_output=True, text=True).stdout.split()
            assert host == ["false", "[ALL]", "[NET_RAW]"]
    finally:
        runtime.down()


def test_wan_cut_mid_collective_ends_with_a_named_error_then_recovers(ci2site):
    _, state = ci2site

    def cut_later(procs):
        def go():
            time.sleep(1.5)
            runtime.set_link_state("beijing", "wuhan", up_=False)
        threading.Thread(target=go, daemon=True).start()

    t0 = time.monotonic()
    try:
        with pytest.raises(TwinError) as exc:
            run_collective(state, "allreduce", "ring", [32 * 1024**2], iters=30, warmup=0,
                           timeout=4.0, on_start=cut_later)
        # what a campaign row would record as the fault
        fault = diagnose(state, str(exc.value))
    finally:
        runtime.set_link_state("beijing", "wuhan", up_=True)
    assert time.monotonic() - t0 < 60
    assert "rank" in str(exc.value) and "timed out" in str(exc.value)
    assert fault.startswith("WAN link beijing-wuhan is cut"), fault
    assert diagnose(state, str(exc.value)) == "timeout (no part of the twin found dead)"
    time.sleep(0.5)
    assert run_collective(state, "allreduce", "ring", [1024**2], iters=1, warmup=0)[0].wrong == 0


def test_killed_worker_container_is_reported(ci2site):
    _, state = ci2site
    victim = state.worker("wuhan2")
    try:
        os.kill(victim.pid, signal.SIGKILL)
        time.sleep(1.0)
        assert any("worker wuhan2" in p for p in runtime.health(state))
        assert "worker wuhan2" in diagnose(state, "rank 3: ring all-gather step 1/3: timed out")
    finally:
        pass  # the module fixture's teardown removes the twin; nothing else depends on wuhan2


CAMPAIGN = f"""name: interrupted
topology: {TOPOS}/ci-2site.yaml
schedule: {{forward: 20ms, backward: 40ms, buckets: [200M, 200M]}}
iterations: 1
sweep:
  algo: [ring, hier, tree]
  overlap: [true, false]
"""


def test_campaign_killed_at_a_random_point_resumes_with_every_row_once(clean_machine, tmp_path):
    spec = tmp_path / "c.yaml"
    spec.write_text(CAMPAIGN)
    out = tmp_path / "rows.csv"
    planned = {p["row_id"] for p in load_campaign(spec).points()}
    proc = subprocess.Popen([*TWIN, "campaign", "run", str(spec), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.2)
    time.sleep(random.Random(os.getpid()).uniform(0, 3))
    proc.kill()
    proc.wait()
    before = csv_rows(out)
    assert before, "the first run wrote no row within 240 s"
    subprocess.run([*TWIN, "clean"], check=True, capture_output=True, cwd=ROOT)
    done = subprocess.run([*TWIN, "campaign", "run", str(spec), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = csv_rows(out)
    assert sorted(r["row_id"] for r in rows) == sorted(planned), "every planned row exactly once"
    # the rows written before the kill are kept as they were, not measured again
    assert rows[:len(before)] == before
    # and every row measured: a campaign records a failed point as a row too
    assert [(r["row_id"], r["status"], r["error"]) for r in rows if r["status"] != "ok"] == []
    assert all(float(r["iteration_s"]) >= float(r["compute_s"]) > 0 for r in rows), rows


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))
