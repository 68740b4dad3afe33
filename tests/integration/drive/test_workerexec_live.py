"""Commands in real worker containers through the engine's exec API, and the traffic started
that way: output as it comes, exit status, a kill that ends the command inside its container,
probes and iperf3 that leave nothing behind."""

from __future__ import annotations

import time

from tests.integration.drive.containers import in_container
from tests.integration.machine import early_ms
from traffic.probe import wait_listening
from twin.drive.crosstraffic import start_probe
from twin.drive.workerexec import WorkerProcess
from twin.emulation.cleanup import cmdline, twin_processes
from twin.measure.iperf import iperf


def test_output_comes_as_written_and_the_exit_status_is_the_commands(ci2site):
    _, state = ci2site
    p = WorkerProcess(state.worker("beijing1").container, [
        "python3", "-c", "import sys, time; print('probe: listening on 1', file=sys.stderr, "
        "flush=True); time.sleep(1); print('done'); sys.exit(3)"])
    wait_listening(p, timeout=10)  # the stderr line, read while the command still runs
    assert p.poll() is None
    out, err = p.communicate(timeout=10)
    assert (out, err, p.returncode) == ("done\n", "", 3)


def test_kill_ends_the_command_inside_its_container(ci2site):
    _, state = ci2site
    box = state.worker("wuhan2").container
    p = WorkerProcess(box, ["python3", "-c", "import time; time.sleep(300)  # drive-kill-test"])
    deadline = time.monotonic() + 10
    while not in_container(box, "drive-kill-test") and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = p.pid
    assert pid and "drive-kill-test" in " ".join(cmdline(pid))  # the PID is the host's
    t0 = time.monotonic()
    p.kill()
    assert p.wait(timeout=10) == 137  # 128 + SIGKILL, as the engine reports it
    assert time.monotonic() - t0 < 5
    assert in_container(box, "drive-kill-test") == []


def test_a_program_the_image_lacks_fails_with_the_engines_reason(ci2site):
    _, state = ci2site
    p = WorkerProcess(state.worker("beijing2").container, ["no-such-program", "--x"])
    out, err = p.communicate(timeout=20)
    assert p.returncode in (126, 127)
    assert "no-such-program" in out + err


def test_probe_across_sites_counts_every_packet(ci2site):
    topo, state = ci2site
    one_way_ms = topo.link_delay(topo.links[0]) * 1e3
    probe = start_probe(state.worker("beijing1"), state.worker("wuhan1"), 7400, pps=200,
                        count=300)
    result = probe.result(timeout=30)
    assert result["received"] == 300 and result["loss"] == 0
    assert one_way_ms - early_ms(state, ["beijing", "wuhan"]) <= result["owd_min_ms"] < one_way_ms + 5
    assert probe.receiver.returncode == 0 and probe.sender and probe.sender.returncode == 0


def test_calibration_iperf_waits_for_its_server_and_leaves_nothing(ci2site):
    topo, state = ci2site
    bps, _ = iperf(state.worker("beijing1"), state.worker("wuhan2"), seconds=2)
    assert 0 < bps <= topo.emulated_rate(topo.links[0].rate) * 1.02
    assert [p for p in twin_processes() if "iperf3" in cmdline(p)] == []
