"""Life cycle of one running twin: up (foreground or detached), state, live link changes, down.

Only one twin runs on a machine at a time; the state file says which. Any failure or interrupt
during bring-up removes everything already started before the error is reported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
import typing
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Optional

from twin.emulation import cleanup, liveness
from twin.emulation.build import build_twin
from twin.emulation.controller import admitted_reservations
from twin.emulation.links import set_long_haul_impairments
from twin.emulation.state import TwinState, WanInfo
from twin.emulation.tc import class_rate_commands, frame_bytes, htb_burst_bytes
from twin.errors import InputError, TwinError
from twin.host import rundirs, services
from twin.host.processes import alive, run_argv, tail
from twin.plan.routing import link_classes
from twin.spec.loading import read_input
from twin.spec.topology import Topology

MAX_STATE_BYTES = 16 * 1024 * 1024  # a twin at every limit of a topology writes ~1 MB


def load_state() -> Optional[TwinState]:
    """The running twin's state, None if none runs; a damaged state file (cut short, not JSON,
    not a state) is one line telling to run 'twin clean', which needs no state."""
    f = rundirs.state_file()
    if not f.exists():
        return None
    try:
        text = read_input(f, MAX_STATE_BYTES)
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        state = TwinState.from_dict(data)
        _check_types(state)
    except InputError as exc:
        reason = exc.problems[0].removeprefix(f"{f}: ")
        raise TwinError(f"{f}: unreadable state ({reason}); run 'twin clean'") from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise TwinError(f"{f}: unreadable state ({reason}); run 'twin clean'") from None
    rundirs.use_run_logs(state.log_dir)  # e.g. 'twin controller restart' logs where the run does
    return state


def _check_types(obj: object, where: str = "") -> None:
    """TypeError naming the first field of a state (its workers, links and delay lines included)
    whose value is not of its declared type: a state file that parses but was not written by
    this twin."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        _check_value(getattr(obj, f.name), hints[f.name], f"{where}{f.name}")


def _check_value(value: object, want: typing.Any, name: str) -> None:
    origin = typing.get_origin(want) or want
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return
        want = next(a for a in typing.get_args(want) if a is not type(None))
        origin = typing.get_origin(want) or want
    if typing.is_typeddict(origin):
        if not isinstance(value, dict):
            raise TypeError(f"{name} is {type(value).__name__}, not a mapping")
        for key, key_type in typing.get_type_hints(origin).items():
            if key not in value:
                raise TypeError(f"{name} has no {key!r}")
            _check_value(value[key], key_type, f"{name}.{key}")
        return
    kinds = (int, float) if origin is float else (origin,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and origin is not bool):
        raise TypeError(f"{name} is {type(value).__name__}, not {getattr(origin, '__name__', origin)}")
    if dataclasses.is_dataclass(value):
        _check_types(value, f"{name}.")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, typing.get_args(want)[0], f"{name}[{i}]")
    elif isinstance(value, dict):
        key_type, value_type = typing.get_args(want)
        for key, item in value.items():
            _check_value(key, key_type, f"{name} key")
            _check_value(item, value_type, f"{name}[{key!r}]")


def save_state(state: TwinState) -> None:
    f = rundirs.state_file()
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=1))
    os.replace(tmp, f)


def require_state() -> TwinState:
    state = load_state()
    if state is None:
        raise TwinError("no twin is running; start one with 'twin up TOPOLOGY --detach'")
    return state


def refuse_if_running() -> None:
    state = load_state()
    if state is not None:
        raise TwinError(f"a twin is already running (run {state.run_id}, topology "
                        f"{state.topology}); stop it with 'twin down' (or 'twin clean')")
    leftovers = cleanup.twin_containers() or cleanup.twin_bridges()
    if leftovers:
        raise TwinError("a previous twin run left containers or bridges behind; "
                        "run 'twin clean' first")


def ensure_services() -> None:
    services.ensure_docker()
    services.ensure_ovs()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM/SIGHUP like Ctrl-C so the same cleanup path runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def up(topo: Topology, topology_file: str, controller: str = "none", progress=print):
    """Bring a topology up and record it; returns (net, state). Cleans up on any failure."""
    ensure_services()
    refuse_if_running()
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    rundirs.open_run_logs(run_id)
    try:
        with terminate_as_interrupt():
            net, state = build_twin(topo, topology_file, run_id, controller, progress)
            state.owner_pid = os.getpid()
            save_state(state)
    except BaseException:
        progress("bring-up failed or interrupted: removing what was started")
        cleanup.clean()
        raise
    return net, state


def down() -> cleanup.CleanReport:
    report = cleanup.clean()
    rundirs.use_run_logs(None)  # the run's logs stay in its folder
    return report


def find_wan(state: TwinState, a: str, b: str) -> WanInfo:
    for w in state.wan:
        if {w.a, w.b} == {a, b}:
            return w
    raise TwinError(f"no WAN link between {a!r} and {b!r}; links are: "
                    + ", ".join(f"{w.a}-{w.b}" for w in state.wan))


def set_link(a: str, b: str, delay_s: Optional[float] = None, rate_bps: Optional[float] = None,
             loss: Optional[float] = None, jitter_s: Optional[float] = None,
             scale: Optional[float] = None) -> WanInfo:
    """Change a live WAN link. ``rate_bps`` is in real units, the topology's scale applies;
    ``delay_s`` and ``jitter_s`` are the fabric's (under time dilation the host plays them x K).
    The link keeps the compensation of the host's floor measured at bring-up."""
    state = require_state()
    w = find_wan(state, a, b)
    time_ = state.time
    if delay_s is not None:
        w.delay_s = delay_s
    if jitter_s is not None:
        w.jitter_s = jitter_s
    if loss is not None:
        w.loss = loss
    if rate_bps is not None:
        # the twin's scale from the link as it is (before the new rate replaces w.rate_bps)
        factor = scale if scale is not None else w.emulated_bps / w.rate_bps
        w.rate_bps = rate_bps
        w.emulated_bps = rate_bps * factor
        host_bps = time_.host_bps(w.emulated_bps)
        burst = str(htb_burst_bytes(host_bps, frame_bytes(state.mtu)))
        classes = [replace(c, rate_bps=time_.host_bps(c.rate_bps), booked_bps=time_.host_bps(c.booked_bps))
                   for c in link_classes(admitted_reservations(), w.a, w.b)] if w.class_dscps else []
        for intf in (w.intf_a, w.intf_b):
            if w.class_dscps:  # detpath's classes: each one's rate follows the line's
                for argv in class_rate_commands(intf, host_bps, classes, state.mtu):
                    run_argv(argv)
                continue
            for classid, parent in (("1:1", "1:"), ("1:10", "1:1")):
                run_argv(["tc", "class", "change", "dev", intf, "parent", parent, "classid", classid,
                          "htb", "rate", f"{int(host_bps)}bit", "ceil", f"{int(host_bps)}bit",
                          "burst", burst, "cburst", burst])
    # the delay stage also serializes at the rate (delay line, netem rate): a new rate goes there
    if w.delayline or any(v is not None for v in (delay_s, jitter_s, loss, rate_bps)):
        set_long_haul_impairments(w.delayline, [(w.intf_a, None), (w.intf_b, None)],
                                  w.shaping(state.mtu, time_))
    save_state(state)
    return w


def set_link_state(a: str, b: str, up_: bool) -> WanInfo:
    """Cut or restore a WAN link by taking both switch ports down (OVS sees the port go down)."""
    state = require_state()
    w = find_wan(state, a, b)
    for intf in (w.intf_a, w.intf_b):
        run_argv(["ip", "link", "set", "dev", intf, "up" if up_ else "down"])
    if up_:  # where BFD watches the link, it is live again once its sessions are
        liveness.wait_bfd_up([w.intf_a, w.intf_b])
    return w


def set_link_span(a: str, b: str, up_: bool) -> WanInfo:
    """Cut or restore a WAN link mid-span: its delay stage drops every frame (the delay line's
    ``down``; netem: 100% loss) while both switch ports stay up, so only a liveness check (BFD,
    see twin.emulation.liveness) can tell the switches. The cut is part of the link's state:
    `twin link set` during it changes the link and keeps it cut."""
    state = require_state()
    w = find_wan(state, a, b)
    if not w.delayline and state.mechanism != "netem":
        raise TwinError(f"WAN link {a}-{b} has no delay stage to cut (no delay, jitter or loss)")
    w.cut_mid_span = not up_
    set_long_haul_impairments(w.delayline, [(w.intf_a, None), (w.intf_b, None)],
                              w.shaping(state.mtu, state.time))
    save_state(state)
    if up_:
        liveness.wait_bfd_up([w.intf_a, w.intf_b])
    return w


def exec_argv(node: str, argv: list[str], interactive: bool = False) -> list[str]:
    """The ``docker exec`` command line running ``argv`` inside a worker's container, for
    ``twin exec`` to replace itself with (os.execvp).

    The one place the twin uses the docker CLI rather than the SDK: an interactive shell needs a
    terminal, and the CLI is what gives one (raw mode, window resizes, Ctrl-C and end of input
    passed through, the command's exit status as its own); the SDK only hands back the raw
    socket of the exec, and all of that would have to be written again here."""
    state = require_state()
    w = state.worker(node)
    return ["docker", "exec"] + (["-it"] if interactive else ["-i"]) + [w.container] + argv


def restart_controller() -> int:
    """Start the recorded controller again; it reinstalls the same state from the same model."""
    from twin.emulation import controller as ctl
    state = require_state()
    if state.controller == "none":
        raise TwinError("this twin runs without a controller (static flows)")
    if alive(state.controller_pid):
        os.kill(state.controller_pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while alive(state.controller_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    model_file = rundirs.run_dir() / "controller-model.json"
    ready = rundirs.run_dir() / "controller-ready.json"
    ready.unlink(missing_ok=True)
    proc = ctl.start(state.controller, model_file)
    ctl.wait_ready(model_file, proc.pid)
    state.controller_pid = proc.pid
    save_state(state)
    return proc.pid


def health(state: TwinState) -> list[str]:
    """One line per dead part of the twin: controller, delay lines, worker containers, cut links."""
    problems: list[str] = []
    logs = Path(state.log_dir or rundirs.log_dir())
    if state.controller != "none" and not alive(state.controller_pid):
        log = logs / "controller.log"
        problems.append(f"controller {state.controller} (pid {state.controller_pid}) is dead; "
                        "flows stay installed (fail-secure); 'twin controller restart' reinstalls them"
                        f" (its log, {log}: {tail(log, 1)})")
    for link in state.wan:
        line = link.delayline
        if line and not alive(line.pid):
            log = logs / f"delayline-{line.name}.log"
            problems.append(f"delay line of {link.a}-{link.b} (pid {line.pid}) is dead: the link "
                            "carries nothing; 'twin down' and 'twin up' to recover"
                            f" (its log, {log}: {tail(log, 1)})")
    for worker in state.workers:
        if not alive(worker.pid):
            problems.append(f"worker {worker.name} (container {worker.container[:12]}) is not "
                            "running")
    for link in state.wan:
        down = [i for i in (link.intf_a, link.intf_b) if _operstate(i) == "down"]
        if down:
            problems.append(f"WAN link {link.a}-{link.b} is cut (port {', '.join(down)} down); "
                            f"'twin link up {link.a} {link.b}' restores it")
        if link.cut_mid_span:
            problems.append(f"WAN link {link.a}-{link.b} is cut mid-span (its delay stage drops "
                            f"every frame, the ports are up); 'twin link up {link.a} {link.b} "
                            "--mid-span' restores it")
    return problems


def _operstate(dev: str) -> str:
    try:
        return Path(f"/sys/class/net/{dev}/operstate").read_text().strip()
    except OSError:
        return "missing"
