"""A command run inside a worker's container through the Docker engine's exec API, handled the
way the drive layer handles a ``subprocess.Popen``: text pipes ``stdout`` and ``stderr`` that can
be read line by line as the command writes (``select`` works on them), ``poll``, ``wait``,
``communicate(timeout)``, ``returncode``, and a ``kill`` that really ends the command.

Why not a ``docker exec`` client in a subprocess: killing that client leaves the command running
in the container. The client forwards no signal to the command (moby/moby#9098), the engine has
no call that ends an exec (moby/moby#35703), and a dropped connection does not end it either. A
rank killed on a run's deadline went on with its collective: on ci-2site the four ranks of a
64 MiB all-reduce were all still running 30 s after the kill, loading the emulated WAN under
whatever the twin measured next. ``exec_inspect`` tells the command's PID as the host sees it,
and this class signals that PID.

Cost: two requests to the engine per command (create, start: about 1-3 ms each, the start
returns before the engine has spawned the command) instead of one ``docker`` client process
each; see ``launch_ranks`` for 40 ranks at once.

The command's exit status is the engine's (a command killed by SIGKILL reports 137, as
``docker exec`` did, not Popen's -9). Only the command's own process is signalled: the worker
programs (``traffic/``) start no children.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from typing import IO, Any, Iterable, Optional

from docker.errors import APIError, NotFound

from twin.errors import TwinError
from twin.host.engine import docker_client

PIPE_BYTES = 1 << 20  # pipe capacity: a rank's whole output fits while nobody reads it yet
START_WAIT_S = 10.0  # how long kill() waits for a just-started command to show, stop() for an end
GONE = -1  # exit status of a command whose container was removed (the engine forgot the rest)


class WorkerProcess:
    """``argv`` running in ``container`` (with ``env`` added to the container's environment);
    see the module docstring."""

    def __init__(self, container: str, argv: list[str], env: Optional[dict[str, str]] = None):
        self.args = argv
        self.container = container
        self.returncode: Optional[int] = None
        self._api = docker_client().api
        try:
            self._exec = self._api.exec_create(container, argv, stdout=True, stderr=True,
                                               environment=env)["Id"]
            frames = self._api.exec_start(self._exec, stream=True, demux=True)
        except APIError as exc:
            raise TwinError(f"cannot run {' '.join(argv[:3])} in container {container}: "
                            f"{exc.explanation or exc}") from None
        out_r, out_w = _pipe()
        err_r, err_w = _pipe()
        self.stdout: IO[str] = os.fdopen(out_r, "r", encoding="utf-8", errors="replace")
        self.stderr: IO[str] = os.fdopen(err_r, "r", encoding="utf-8", errors="replace")
        self._copier = threading.Thread(target=_copy, args=(frames, out_w, err_w), daemon=True,
                                        name=f"exec in {container[:12]}")
        self._copier.start()
        self._readers: dict[str, threading.Thread] = {}
        self._read: dict[str, str] = {}

    # ---- state -------------------------------------------------------------------------
    def _inspect(self) -> dict:
        """The engine's view of the command; a removed container took its commands with it."""
        try:
            return self._api.exec_inspect(self._exec)
        except NotFound:
            return {"Running": False, "ExitCode": GONE, "Pid": 0}

    def poll(self) -> Optional[int]:
        """The exit status once the command has ended, else None. While the command's output is
        still coming this asks the engine nothing (callers poll 40 ranks every 50 ms)."""
        if self.returncode is None and not self._copier.is_alive():
            state = self._inspect()
            if not state["Running"] and state["ExitCode"] is not None:
                self.returncode = int(state["ExitCode"])
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._copier.join(timeout)
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    @property
    def pid(self) -> int:
        """The command's PID on the host (0 until the engine has started it)."""
        return int(self._inspect()["Pid"] or 0)

    # ---- output ------------------------------------------------------------------------
    def communicate(self, timeout: Optional[float] = None) -> tuple[str, str]:
        """(stdout, stderr) once the command has ended, like Popen.communicate; on
        ``subprocess.TimeoutExpired`` nothing is lost and a later call goes on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for name, f in (("out", self.stdout), ("err", self.stderr)):
            if name not in self._readers:
                self._readers[name] = threading.Thread(
                    target=lambda n=name, f=f: self._read.__setitem__(n, f.read()), daemon=True)
                self._readers[name].start()
        for t in self._readers.values():
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        self.wait(None if deadline is None else max(0.1, deadline - time.monotonic()))
        for f in (self.stdout, self.stderr):
            f.close()
        return self._read["out"], self._read["err"]

    # ---- signals -----------------------------------------------------------------------
    def send_signal(self, sig: int) -> None:
        """Signal the command's process, unless it has ended (then there is nothing to do)."""
        deadline = time.monotonic() + START_WAIT_S
        while self.poll() is None:
            state = self._inspect()
            pid = int(state["Pid"] or 0)
            if state["Running"] and pid:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
                return
            if state["ExitCode"] is not None or time.monotonic() > deadline:
                return  # ended meanwhile, or never started
            time.sleep(0.02)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def stop(procs: Iterable[WorkerProcess]) -> None:
    """Kill every command of ``procs`` still running and wait until each has ended: all are
    signalled before the first wait, so 40 ranks stop at once, not one after the other."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.kill()
    deadline = time.monotonic() + START_WAIT_S
    for p in running:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise TwinError(f"{' '.join(p.args[:3])} in container {p.container[:12]} did not "
                            f"end {START_WAIT_S:.0f} s after SIGKILL") from None


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # the default 64 KiB; only a slow reader notices
    return r, w


def _copy(frames: Any, out_w: int, err_w: int) -> None:
    """Move the engine's multiplexed output into the two pipes until the command closes it.

    A pipe whose reader has gone is skipped, not a reason to stop: the command must be able to
    go on writing, as it would into a pipe nobody reads."""
    open_fds = {out_w, err_w}
    try:
        for out, err in frames:
            for fd, data in ((out_w, out), (err_w, err)):
                if data and fd in open_fds:
                    try:
                        _write_all(fd, data)
                    except BrokenPipeError:
                        open_fds.discard(fd)
    finally:
        frames.close()
        os.close(out_w)
        os.close(err_w)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
