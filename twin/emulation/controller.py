"""The SDN controller as the twin runs it: its own process on loopback, started before the
switches, and trusted only once every switch has acknowledged its flows (barrier replies).

It learns the twin from a description file written here (switches, ports, admitted
reservations); admission itself is planned in twin.plan.reservations, and the reservations'
HTB classes are built by twin.emulation.build.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from controllers.run import APPS
from twin.emulation.state import TwinState
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.processes import alive, tail
from twin.plan.routing import Reservation

CONTROLLER_PORT = 6653
LISTEN_TIMEOUT_S = 30.0  # os-ken imports and starts its apps
READY_TIMEOUT_S = 60.0  # every switch programmed (and LLDP-verified, for detpath)


def write_description(state: TwinState, reservations: list[Reservation]) -> Path:
    """The controller's view of the twin (controllers.description reads it): switches, workers,
    WAN ports and the admitted reservations, and where to report that it is ready."""
    run = rundirs.run_dir()
    ready = run / "controller-ready.json"
    model = {
        "switches": {name: {"dpid": int(name[len(rundirs.prefix()):]), "site": site}
                     for name, site in state.switches.items()},
        "workers": [{k: getattr(w, k) for k in ("name", "site", "ip", "mac", "switch", "port")}
                    for w in state.workers],
        "wan": [{k: getattr(w, k) for k in ("a", "b", "switch_a", "switch_b", "port_a", "port_b",
                                              "delay_s", "emulated_bps")} for w in state.wan],
        "reservations": [asdict(r) for r in reservations],
        "ready_file": str(ready),
    }
    path = run / "controller-model.json"
    ready.unlink(missing_ok=True)
    path.write_text(json.dumps(model, indent=1))
    return path


def admitted_reservations() -> list[Reservation]:
    """The running twin's admitted reservations, as its controller was told them (none where no
    description was written: no controller, or one that reserves nothing)."""
    path = rundirs.run_dir() / "controller-model.json"
    if not path.exists():
        return []
    return [Reservation(**r) for r in json.loads(path.read_text()).get("reservations", [])]


def running_reservations(state: TwinState) -> list[Reservation]:
    """The reservations the running twin's switches classify: detpath's admitted ones, none
    under any other controller (a description left by an earlier run does not count)."""
    return admitted_reservations() if state.controller == "detpath" else []


def listening() -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", CONTROLLER_PORT)) == 0


def start(app: str, model_file: Path) -> subprocess.Popen:
    if app not in APPS:
        raise TwinError(f"unknown controller {app!r} (use {', '.join(APPS)} or none)")
    if listening():
        raise TwinError(f"something already listens on 127.0.0.1:{CONTROLLER_PORT}; run 'twin clean'")
    log = open(log_file(), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "controllers.run", app, str(model_file),
                             "--port", str(CONTROLLER_PORT)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            cwd=str(rundirs.project_root()))
    log.close()
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while not listening():
        if proc.poll() is not None:
            raise TwinError(f"controller {app} exited at start: {tail(log_file())}")
        if time.monotonic() > deadline:
            raise TwinError(f"controller {app} did not listen within {LISTEN_TIMEOUT_S:.0f} s: {tail(log_file())}")
        time.sleep(0.1)
    return proc


def wait_ready(model_file: Path, proc_pid: int) -> dict:
    """Until every switch has answered the controller's barrier after its flows (and, for apps
    that check it, LLDP has confirmed every WAN port is wired as the model says)."""
    ready = Path(json.loads(model_file.read_text())["ready_file"])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready.exists():
            info = json.loads(ready.read_text())
            problems = info.get("wiring_problems") or []
            if problems:
                raise TwinError(f"controller wiring check (LLDP) failed on {len(problems)} WAN "
                                f"port(s): {problems[0]}")
            return info
        if not alive(proc_pid):
            raise TwinError(f"controller died during bring-up: {tail(log_file())}")
        time.sleep(0.1)
    raise TwinError(f"switches not programmed within {READY_TIMEOUT_S:.0f} s: {tail(log_file())}")


def log_file() -> Path:
    return rundirs.log_dir() / "controller.log"


