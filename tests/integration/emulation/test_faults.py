"""Bad input starts nothing; interrupted or killed bring-ups leave nothing after cleanup."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest

from tests.integration.machine import leftovers
from tests.locations import ROOT, TOPOS

TWIN = str(ROOT / ".venv" / "bin" / "twin")


def test_bad_topology_is_one_line_and_starts_nothing(clean_machine, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((TOPOS / "ci-2site.yaml").read_text().replace(
        "{a: beijing, b: wuhan, rate: 400Gbit}", "{a: beijing, b: paris, rate: 400Gbit}"))
    proc = subprocess.run([TWIN, "up", str(bad), "--detach"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"{bad}: line 21: links[0:beijing-paris].b: unknown site 'paris'"]
    assert not any(leftovers().values())


def test_missing_image_is_reported_before_anything_starts(clean_machine, tmp_path):
    topo = tmp_path / "img.yaml"
    topo.write_text((TOPOS / "ci-2site.yaml").read_text().replace(
        "    workers: 2\n    fabric: {rate: 400Gbit}\n  - name: wuhan",
        "    workers: 2\n    image: nosuch/image:1\n    fabric: {rate: 400Gbit}\n  - name: wuhan"))
    proc = subprocess.run([TWIN, "up", str(topo), "--detach"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "sites[0:beijing].image" in proc.stderr and "nosuch/image:1" in proc.stderr
    assert not any(leftovers().values())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_bring_up_removes_itself(clean_machine, sig):
    proc = subprocess.Popen([TWIN, "up", str(TOPOS / "fntf-4site.yaml"), "--detach"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    # Either it was interrupted mid-way (and cleaned up) or it had already finished.
    if proc.returncode == 0:
        subprocess.run([TWIN, "down"], check=True, capture_output=True)
    else:
        assert "interrupted" in err
    assert not any(leftovers().values())


def kill_nine_at_random_then_clean(argv: list[str], low: float, high: float) -> float:
    """Run a twin command, SIGKILL it after a random delay, `twin clean`, check nothing is left
    and that a new twin comes up. Returns the delay used (in the failure message if any)."""
    rng = random.Random(os.getpid() ^ time.time_ns())
    proc = subprocess.Popen([TWIN, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = rng.uniform(low, high)
    time.sleep(after)
    proc.kill()
    proc.wait()
    out = subprocess.run([TWIN, "clean"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("removed"), out.stderr
    assert not any(leftovers().values()), f"killed after {after:.2f} s: {leftovers()}"
    up = subprocess.run([TWIN, "up", str(TOPOS / "ci-2site.yaml"), "--detach"],
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    down = subprocess.run([TWIN, "down"], capture_output=True, text=True)
    assert down.returncode == 0
    return after


def test_kill_minus_nine_then_clean_leaves_nothing_and_next_up_works(clean_machine):
    kill_nine_at_random_then_clean(["up", str(TOPOS / "fntf-4site.yaml"), "--detach"], 0.5, 2.0)


def test_kill_minus_nine_during_an_experiment(clean_machine):
    """Mid-experiment: controller, iperf3 flows, probes and delay lines are all running."""
    kill_nine_at_random_then_clean(["experiment", "determinism", str(TOPOS / "ci-2site.yaml"),
                                    "--scale", "1/4000", "--seconds", "3"], 3.0, 12.0)


def test_kill_minus_nine_during_tear_down(clean_machine):
    up = subprocess.run([TWIN, "up", str(TOPOS / "fntf-4site.yaml"), "--controller", "detpath",
                         "--detach"], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    kill_nine_at_random_then_clean(["down"], 0.05, 1.0)
