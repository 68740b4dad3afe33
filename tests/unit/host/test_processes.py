"""Stopping processes: terminate returns only once they are gone, also when they ignore SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import time

from twin.host.processes import alive, terminate


def _spawn(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_process_that_exits_on_sigterm_is_gone_when_terminate_returns():
    # it takes 0.3 s to exit after SIGTERM, as a delay line printing its counters may
    proc = _spawn("import signal, sys, time\n"
                  "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.3), sys.exit(0)))\n"
                  "print('ready', flush=True)\n"
                  "while True: time.sleep(1)\n")
    t0 = time.monotonic()
    terminate([proc.pid], grace_s=5)
    assert not alive(proc.pid) and time.monotonic() - t0 >= 0.25
    assert proc.wait(timeout=5) == 0  # it exited by itself, not by SIGKILL


def test_a_process_ignoring_sigterm_is_killed_after_the_grace():
    proc = _spawn("import signal, time\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "print('ready', flush=True)\n"
                  "while True: time.sleep(1)\n")
    terminate([proc.pid], grace_s=0.3)
    assert not alive(proc.pid)
    assert proc.wait(timeout=5) == -9


def test_pids_already_gone_are_no_error():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    terminate([proc.pid, proc.pid], grace_s=0.1)
