"""Ranks run as threads of the test process, over loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def in_threads(body: Callable[[int], T], ranks: Iterable[int], timeout: float) -> dict[int, T]:
    """``body(r)`` for every rank ``r``, each in a thread of its own: what each returned, by rank.

    The first exception a rank raised is raised here, and a rank still running after ``timeout``
    seconds is a failure: a test never passes on the results of the ranks that happened to
    finish (a dict of them can be empty)."""
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(r: int) -> None:
        try:
            results[r] = body(r)
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread below
            errors.append(exc)
    threads = {r: threading.Thread(target=run, args=(r,), name=f"rank {r}") for r in ranks}
    for t in threads.values():
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads.values():
        t.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    stuck = [r for r, t in threads.items() if t.is_alive()]
    assert not stuck, f"ranks {stuck} still running after {timeout:g} s"
    assert sorted(results) == sorted(threads), f"ranks {sorted(threads)} returned {sorted(results)}"
    return results
