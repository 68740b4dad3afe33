"""pytest plugin for the stock-kernel guest: print each failure's traceback when it happens, not
only at the end, so a guest stopped by the host's timeout still leaves its failures in the
output (and a long run shows its first failure early)."""

from __future__ import annotations


def pytest_runtest_logreport(report) -> None:
    if report.failed:
        print(f"\n----- {report.nodeid} failed ({report.when}):\n{report.longreprtext}\n-----",
              flush=True)
