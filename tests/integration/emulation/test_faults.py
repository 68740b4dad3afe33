"""Bad input starts nothing; interrupted or killed bring-ups leave nothing after cleanup."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.machine import leftovers
from tests.locations import ROOT, TOPOS

# This checkout's own CLI (the .venv's console script may import another checkout's code).
TWIN = [sys.executable, "-m", "twin.cli.main"]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
CI = (TOPOS / "ci-2site.yaml").read_text()
BAD_TOPOLOGIES = {  # name: (file contents, extra arguments, the one line's field and reason)
    "not UTF-8": (CI.replace("Wuhan", "W\xfchan").encode("latin-1"), [],
                  "not UTF-8 text (byte "),
    "nested 10,000 deep": ("name: " + "[" * 10_000 + "]" * 10_000 + "\n", [],
                           "line 1: nested deeper than 20 levels of lists and mappings"),
    "workers written twice": (CI.replace("    workers: 2\n", "    workers: 2\n    workers: 3\n", 1),
                              [], "line 12: sites[0:beijing].workers: given twice (lines 12 and 13)"),
    "an infinite rate": (CI.replace("{a: beijing, b: wuhan, rate: 400Gbit}",
                                    "{a: beijing, b: wuhan, rate: 1e999Gbit}"), [],
                         "links[0:beijing-wuhan].rate: rate '1e999Gbit' is above 1000Tbit"),
    "a rate of 1e-7 bit/s": (CI.replace("{a: beijing, b: wuhan, rate: 400Gbit}",
                                        "{a: beijing, b: wuhan, rate: 1e-7bit}"), [],
                             "links[0:beijing-wuhan].rate: rate '1e-7bit' is below 1Kbit"),
    "2 MB of sites": ("name: big\nsites:\n" + "  - {name: s, lat: 1, lon: 1}\n" * 70_000, [],
                      "larger than 256 KiB, the most the twin reads from such a file"),
    "a scale no link survives": (CI, ["--scale", "1/1e9"],
                                 "sites[0:beijing].fabric.rate: 400Gbit at scale 1e-09 is 400bit "
                                 "emulated; the twin needs at least 100Kbit"),
}


def test_bad_topology_is_one_line_and_starts_nothing(clean_machine, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((TOPOS / "ci-2site.yaml").read_text().replace(
        "{a: beijing, b: wuhan, rate: 400Gbit}", "{a: beijing, b: paris, rate: 400Gbit}"))
    proc = subprocess.run([*TWIN, "up", str(bad), "--detach"], capture_output=True, text=True,
                          env=ENV)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"{bad}: line 21: links[0:beijing-paris].b: unknown site 'paris'"]
    assert not any(leftovers().values())


@pytest.mark.parametrize("case", sorted(BAD_TOPOLOGIES))
def test_bad_input_of_any_kind_is_one_line_within_seconds_and_starts_nothing(clean_machine,
                                                                               tmp_path, case):
    text, extra, reason = BAD_TOPOLOGIES[case]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    t0 = time.monotonic()
    proc = subprocess.run([*TWIN, "up", str(bad), "--detach", *extra], capture_output=True,
                          text=True, env=ENV, timeout=120)
    took = time.monotonic() - t0
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode in (1, 2) and len(lines) == 1, proc.stderr
    assert reason in lines[0] and (lines[0].startswith(f"{bad}: ") or
                                   lines[0].startswith("twin: --scale '1/1e9': ")), lines[0]
    assert took < 10, f"{case}: {took:.1f} s"  # ~1 s: Python's start and the file's checks
    assert not any(leftovers().values())


def test_a_bad_campaign_starts_nothing(clean_machine, tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text(f"name: c\ntopology: {TOPOS / 'ci-2site.yaml'}\n"
                   "schedule: {forward: 1s, backward: 1s, buckets: [1M]}\n"
                   "sweep:\n  wan_rate: [400Gbit, 1e999Gbit]\n")
    proc = subprocess.run([*TWIN, "campaign", "run", str(bad), "--out", str(tmp_path / "c.csv")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == (f"{bad}: line 5: sweep.wan_rate[1]: rate '1e999Gbit' is above "
                           "1000Tbit, the largest the twin takes\n")
    assert not (tmp_path / "c.csv").exists() and not any(leftovers().values())


def test_missing_image_is_reported_before_anything_starts(clean_machine, tmp_path):
    topo = tmp_path / "img.yaml"
    topo.write_text((TOPOS / "ci-2site.yaml").read_text().replace(
        "    workers: 2\n    fabric: {rate: 400Gbit}\n  - name: wuhan",
        "    workers: 2\n    image: nosuch/image:1\n    fabric: {rate: 400Gbit}\n  - name: wuhan"))
    proc = subprocess.run([*TWIN, "up", str(topo), "--detach"], capture_output=True, text=True,
                          env=ENV)
    assert proc.returncode == 1
    assert "sites[0:beijing].image" in proc.stderr and "nosuch/image:1" in proc.stderr
    assert not any(leftovers().values())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_bring_up_removes_itself(clean_machine, sig):
    proc = subprocess.Popen([*TWIN, "up", str(TOPOS / "fntf-4site.yaml"), "--detach"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(1.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    # Either it was interrupted mid-way (and cleaned up) or it had already finished.
    if proc.returncode == 0:
        subprocess.run([*TWIN, "down"], check=True, capture_output=True, env=ENV)
    else:
        assert "interrupted" in err
    assert not any(leftovers().values())


def kill_nine_at_random_then_clean(argv: list[str], low: float, high: float) -> float:
    """Run a twin command, SIGKILL it after a random delay, `twin clean`, check nothing is left
    and that a new twin comes up. Returns the delay used (in the failure message if any)."""
    rng = random.Random(os.getpid() ^ time.time_ns())
    proc = subprocess.Popen([*TWIN, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=ENV)
    after = rng.uniform(low, high)
    time.sleep(after)
    proc.kill()
    proc.wait()
    out = subprocess.run([*TWIN, "clean"], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0 and out.stdout.startswith("removed"), out.stderr
    assert not any(leftovers().values()), f"killed after {after:.2f} s: {leftovers()}"
    up = subprocess.run([*TWIN, "up", str(TOPOS / "ci-2site.yaml"), "--detach"],
                        capture_output=True, text=True, timeout=300, env=ENV)
    assert up.returncode == 0, up.stderr
    down = subprocess.run([*TWIN, "down"], capture_output=True, text=True, env=ENV)
    assert down.returncode == 0
    return after


def test_kill_minus_nine_then_clean_leaves_nothing_and_next_up_works(clean_machine):
    kill_nine_at_random_then_clean(["up", str(TOPOS / "fntf-4site.yaml"), "--detach"], 0.5, 2.0)


def test_kill_minus_nine_during_an_experiment(clean_machine):
    """Mid-experiment: controller, iperf3 flows, probes and delay lines are all running."""
    kill_nine_at_random_then_clean(["experiment", "determinism", str(TOPOS / "ci-2site.yaml"),
                                    "--scale", "1/4000", "--seconds", "3"], 3.0, 12.0)


def test_kill_minus_nine_during_tear_down(clean_machine):
    up = subprocess.run([*TWIN, "up", str(TOPOS / "fntf-4site.yaml"), "--controller", "detpath",
                         "--detach"], capture_output=True, text=True, timeout=300, env=ENV)
    assert up.returncode == 0, up.stderr
    kill_nine_at_random_then_clean(["down"], 0.05, 1.0)
