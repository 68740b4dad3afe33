"""`twin run -- CMD` on ci-2site: every worker at once with torchrun's environment, each rank's
output collected, and a failed rank named with its last lines while the others are stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.locations import ROOT


def twin_run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twin.cli.main", "run", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_every_rank_sees_the_rendezvous_and_its_fabric_interface(ci2site):
    _, state = ci2site
    ips = [w.ip for w in state.workers]
    program = ("import os\n"
               "from traffic.torch_bench import interface_with\n"
               f"for ip in {ips!r}:\n"
               "    try:\n"
               "        intf = interface_with(ip)\n"
               "    except ValueError:\n"
               "        continue\n"
               "    e = os.environ\n"
               "    print(e['RANK'], e['WORLD_SIZE'], e['NODE_RANK'], e['LOCAL_RANK'], e['LOCAL_WORLD_SIZE'],"
               " e['MASTER_ADDR'], e['MASTER_PORT'], ip, intf == e['GLOO_SOCKET_IFNAME'])\n")
    proc = twin_run("--port", "29533", "--", "python3", "-c", program)
    assert proc.returncode == 0, proc.stderr
    lines = sorted(proc.stdout.splitlines())
    assert len(lines) == len(ips) == 4
    for i, (line, w) in enumerate(zip(lines, state.workers)):
        assert line == f"[{i} {w.name}] {i} 4 {i} 0 1 {ips[0]} 29533 {w.ip} True"


def test_a_failing_rank_is_named_with_its_last_lines_and_the_others_are_stopped(ci2site):
    _, state = ci2site
    program = ("import os, sys, time\n"
               "r = int(os.environ['RANK'])\n"
               "print('started', r, flush=True)\n"
               "if r == 2:\n"
               "    sys.exit('rank two gives up')\n"
               "time.sleep(120)\n")
    t0 = time.monotonic()
    proc = twin_run("--grace", "1", "--", "python3", "-c", program)
    took = time.monotonic() - t0
    assert proc.returncode == 1
    victim = state.workers[2].name
    assert f"rank 2 ({victim}) exited with status 1; its last lines:" in proc.stderr
    assert "    rank two gives up" in proc.stderr and "    started 2" in proc.stderr
    for i in (0, 1, 3):
        assert f"rank {i} ({state.workers[i].name}) killed 1 s after rank 2 failed" in proc.stderr
    assert took < 60  # not the others' 120 s sleep
    assert f"[0 {state.workers[0].name}] started 0" in proc.stdout
