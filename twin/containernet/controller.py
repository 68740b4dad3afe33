"""Containernet's controllers in the twin: ``Controller`` and ``OVSController`` run a learning
switch on os-ken (``twin.containernet.learning``, by ``twin.containernet.serve``) instead of
Mininet's reference binaries, which these machines do not have. :class:`LearningController` is
the Mininet node that starts and stops it for a network.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from mininet.node import Controller, Node

from twin.emulation import controller as twin_controller
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.processes import WORKLOAD_ENV, tail

LISTEN_TIMEOUT_S = 30.0  # os-ken imports and starts its apps


def listening(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((ip, port)) == 0


class LearningController(Controller):
    """A Mininet controller node running the twin's learning switch on ``ip:port``.

    Its process is marked as the twin's (``twin clean`` finds it after a crash). ``model_file``:
    the network's description (switches, switch-to-switch links, where to report ready), written
    by the network before it starts the controller; without one every port floods.
    """

    def __init__(self, name: str, ip: str = "127.0.0.1", port: int = 6653, **params: Any):
        self.proc: Optional[subprocess.Popen] = None
        self.model_file: Optional[Path] = None
        super().__init__(name, command=sys.executable, cargs="", ip=ip, port=port, **params)

    def checkListening(self) -> None:
        if listening(self.ip, self.port):
            raise TwinError(f"{self.name}: something already listens on {self.ip}:{self.port}; "
                            "stop it or give the controller another port")

    def log_file(self) -> Path:
        return rundirs.log_dir() / f"containernet-{self.name}.log"

    def start(self) -> None:
        if self.model_file is None:
            self.model_file = rundirs.run_dir() / f"containernet-{self.name}-model.json"
            self.model_file.write_text(json.dumps(description({}, [], ready_file="")))
        self.checkListening()
        with open(self.log_file(), "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "twin.containernet.serve", str(self.model_file),
                 "--ip", self.ip, "--port", str(self.port)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=str(rundirs.project_root()), env={**os.environ, WORKLOAD_ENV: "1"})
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while not listening(self.ip, self.port):
            if self.proc.poll() is not None:
                raise TwinError(f"{self.name} exited at start: {tail(self.log_file())}")
            if time.monotonic() > deadline:
                raise TwinError(f"{self.name} did not listen on {self.ip}:{self.port} within "
                                f"{LISTEN_TIMEOUT_S:.0f} s: {tail(self.log_file())}")
            time.sleep(0.1)

    def wait_ready(self) -> None:
        """Until every switch of the description has answered the controller's first barrier."""
        if self.proc is not None and self.model_file is not None:
            twin_controller.wait_ready(self.model_file, self.proc.pid)

    def stop(self, *args: Any, **kwargs: Any) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.model_file is not None:
            ready = json.loads(self.model_file.read_text()).get("ready_file")
            if ready:
                Path(ready).unlink(missing_ok=True)
            self.model_file.unlink(missing_ok=True)
            self.model_file = None
        Node.stop(self, *args, **kwargs)  # not Controller.stop: no 'kill %command' in a shell


def description(switches: dict[str, int], links: list[dict[str, Any]], ready_file: str) -> dict:
    """What controllers.description reads: switches (name -> dpid; each its own site) and the
    switch-to-switch links (their ports, one-way delay and rate)."""
    return {"switches": {name: {"dpid": dpid, "site": name} for name, dpid in switches.items()},
            "workers": [], "wan": links, "reservations": [], "ready_file": ready_file}
