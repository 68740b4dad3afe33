"""The ``twin`` command: doctor, setup, validate, up/down/clean, exec, inspect, link, calibrate, graph.

Every user-facing failure is one line on stderr and a non-zero exit; tracebacks are bugs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from twin.errors import InputError, TwinError

# Tables get room when output goes to a file or CI log; errors are plain lines, never wrapped.
console = Console(width=None if sys.stdout.isatty() else 200)


def error_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}")


# ---- commands ----------------------------------------------------------------

def cmd_doctor(args) -> int:
    from twin.host.capabilities import check_all
    caps = check_all()
    table = Table(title="twin doctor: what this machine offers")
    for col in ("capability", "status", "detail", "mechanism the twin uses"):
        table.add_column(col)
    for c in caps:
        table.add_row(c.name, "[green]ok[/]" if c.ok else "[red]missing[/]", c.detail, c.mechanism)
    console.print(table)
    problems = [c for c in caps if not c.ok]
    for c in problems:
        error_line(f"problem: {c.name}: {c.detail}; fix: {c.fix}")
    return 1 if problems else 0


def cmd_setup(args) -> int:
    """Start daemons and build the worker image (packages and venv come from scripts/setup.sh)."""
    from twin.emulation.delayline import ensure_built
    from twin.emulation.nodes import docker_client
    from twin.host import services
    from twin.host.images import build_worker
    _progress(f"docker engine: {services.ensure_docker()}")
    _progress(f"open vswitch: {services.ensure_ovs()}")
    _progress(f"delay line: {ensure_built()}")
    _progress(f"worker image: {build_worker(docker_client(), log=_progress)}")
    return 0


def cmd_validate(args) -> int:
    from twin.spec.topology import load_topology
    bad = 0
    for f in args.files:
        try:
            topo = load_topology(f)
            console.print(f"{f}: ok ({len(topo.sites)} sites, "
                          f"{sum(s.workers for s in topo.sites)} workers, {len(topo.links)} links, "
                          f"span {topo.span_km():.0f} km)")
        except InputError as exc:
            bad += 1
            for line in exc.problems:
                error_line(line)
    return 1 if bad else 0


def cmd_schema(args) -> int:
    from twin.spec.topology import json_schema
    print(json_schema())
    return 0


def cmd_up(args) -> int:
    from twin.emulation import runtime
    from twin.spec.topology import load_topology, single_site
    topo = _with_scale(load_topology(args.topology), args.scale)
    if args.single_site:
        topo = single_site(topo)
    t0 = time.monotonic()
    net, state = runtime.up(topo, str(args.topology), args.controller, _progress)
    console.print(f"twin [bold]{topo.name}[/] up in {time.monotonic() - t0:.1f} s: "
                  f"{len(state.workers)} workers, {len(state.switches)} switches, "
                  f"{len(state.wan)} WAN links; links: {state.mechanism}, OVS datapath: "
                  f"{state.datapath}; scale: {state.scale}; logs: {_shown_path(state.log_dir)}")
    if args.calibrate:
        _run_calibration(topo, state, args.results)
    if args.detach:
        console.print("detached; 'twin inspect', 'twin exec NODE -- CMD', 'twin down'")
        return 0
    from mininet.cli import CLI
    try:
        CLI(net)
    finally:
        _progress("stopping")
        report = runtime.down()
        _progress(report.summary())
    return 0


def cmd_down(args) -> int:
    from twin.emulation import runtime
    state = runtime.load_state()
    report = runtime.down()
    name = state.topology if state else "no recorded twin"
    console.print(f"down ({name}): {report.summary()}")
    return 0


def cmd_clean(args) -> int:
    from twin.emulation.cleanup import clean
    console.print(clean().summary())
    if args.images:
        from twin.emulation.nodes import docker_client
        from twin.host.images import remove_stale_worker_images
        removed = remove_stale_worker_images(docker_client())
        console.print(f"removed {len(removed)} worker image(s) of older traffic/ code"
                      + (f": {', '.join(removed)}" if removed else ""))
    return 0


def cmd_exec(args) -> int:
    from twin.emulation import runtime
    argv = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not argv:
        raise TwinError("exec: give a command after '--', e.g. twin exec beijing1 -- ip addr")
    full = runtime.exec_argv(args.node, argv, interactive=sys.stdin.isatty())
    os.execvp(full[0], full)
    return 0  # not reached


def cmd_inspect(args) -> int:
    from twin.emulation import runtime
    from twin.host.processes import alive as ctl_alive
    from twin.units import format_rate, format_time
    s = runtime.require_state()
    console.print(f"run {s.run_id}: topology {s.topology} ({s.topology_file}); controller "
                  f"{s.controller}; links {s.mechanism}; OVS {s.datapath} datapath; scale {s.scale}; "
                  f"logs {_shown_path(s.log_dir)}")
    nodes = Table(title="workers")
    for col in ("node", "site", "ip", "mac", "switch:port", "container"):
        nodes.add_column(col)
    for w in s.workers:
        nodes.add_row(w.name, w.site, w.ip, w.mac, f"{w.switch}:{w.port}", w.container[:12])
    console.print(nodes)
    links = Table(title="long-haul links")
    for col in ("link", "ports", "km", "one-way delay", "jitter", "loss", "rate (real)",
                "rate (emulated)", "queue", "mechanism"):
        links.add_column(col)
    for w in s.wan:
        alive = ""
        if w.delayline:
            pid = w.delayline["pid"]
            alive = f"delay line pid {pid}" + ("" if ctl_alive(pid) else " [red]DEAD[/]")
        links.add_row(f"{w.a}-{w.b}", f"{w.intf_a} / {w.intf_b}", f"{w.km:.0f}",
                      format_time(w.delay_s), format_time(w.jitter_s) if w.jitter_s else "-",
                      f"{w.loss:.3%}" if w.loss else "-", format_rate(w.rate_bps),
                      format_rate(w.emulated_bps), f"{w.queue_bytes / 1e3:.0f} KB",
                      alive or "netem")
    console.print(links)
    problems = runtime.health(s)
    for line in problems:
        error_line(f"problem: {line}")
    if not problems:
        console.print("health: all workers, delay lines"
                      + (" and the controller" if s.controller != "none" else "") + " running")
    return 1 if problems else 0


def cmd_controller(args) -> int:
    from twin.emulation import runtime
    pid = runtime.restart_controller()
    console.print(f"controller restarted (pid {pid}); every switch reprogrammed")
    return 0


def cmd_link(args) -> int:
    from twin.emulation import runtime
    from twin.units import (
        format_rate,
        format_time,
        parse_fraction,
        parse_rate,
        parse_time,
    )
    if args.action == "set":
        w = runtime.set_link(
            args.a, args.b,
            delay_s=parse_time(args.delay) if args.delay else None,
            rate_bps=parse_rate(args.rate) if args.rate else None,
            loss=parse_fraction(args.loss) if args.loss else None,
            jitter_s=parse_time(args.jitter) if args.jitter else None)
        console.print(f"{w.a}-{w.b}: delay {format_time(w.delay_s)}, rate {format_rate(w.rate_bps)} "
                      f"(emulated {format_rate(w.emulated_bps)}), loss {w.loss:.4%}")
    else:
        w = runtime.set_link_state(args.a, args.b, args.action == "up")
        console.print(f"{w.a}-{w.b}: {args.action}")
    return 0


def _run_calibration(topo, state, results: str) -> None:
    from twin.measure.calibrate import calibrate, fabric_of, summary, write_csv
    rows = calibrate(state, fabric_of(topo), progress=_progress)
    out = Path(results) / f"calibration-{topo.name}-{state.run_id}.csv"
    write_csv(rows, out)
    table = Table(title=f"calibration of {topo.name} ({state.mechanism}; {state.scale})")
    for col in ("path", "RTT cfg ms", "RTT median ms", "err ms", "PDV ms", "rate Mbit/s",
                "goodput Mbit/s", "wire ratio", "ok"):
        table.add_column(col)
    for r in rows:
        ok = r.rtt_ok and r.pdv_ok and r.throughput_ok
        table.add_row(f"{r.src}->{r.dst}", f"{r.configured_rtt_ms:.2f}",
                      f"{r.measured_rtt_median_ms:.2f}", f"{r.rtt_error_ms:+.2f}",
                      f"{r.pdv_ms:.2f}", f"{r.emulated_rate_mbps:g}", f"{r.goodput_mbps:.1f}",
                      f"{r.wire_ratio:.3f}", "[green]yes[/]" if ok else "[red]no[/]")
    console.print(table)
    console.print(f"{summary(rows)}; CSV: {out}")


def cmd_calibrate(args) -> int:
    from twin.emulation import runtime
    from twin.spec.topology import load_topology, single_site
    state = runtime.require_state()
    topo = load_topology(state.topology_file)
    if state.topology.endswith("-single"):
        topo = single_site(topo)
    _run_calibration(topo, state, args.results)
    return 0


@contextlib.contextmanager
def twin_for(topology: str | None, controller: str = "none"):
    """The running twin, or one brought up for this command and torn down after it."""
    from twin.emulation import runtime
    from twin.spec.topology import load_topology
    if topology is None:
        state = runtime.require_state()
        yield load_topology(state.topology_file), state
        return
    topo = load_topology(topology)
    _, state = runtime.up(topo, topology, controller, _progress)
    try:
        yield topo, state
    finally:
        _progress(runtime.down().summary())


def cmd_collective(args) -> int:
    from twin.drive.benchmark import parse_sizes, run_collective
    from twin.output.csvrows import write_rows
    from twin.output.nccl import nccl_table
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as exc:
        raise TwinError(f"--sizes: {exc}") from None
    with twin_for(args.topology) as (topo, state):
        fabric = min(topo.emulated_rate(s.fabric.rate) for s in topo.sites)
        rows = []
        for algo in args.algo:
            rows += (r := run_collective(state, args.op, algo, sizes, iters=args.iters,
                                         warmup=args.warmup, conns=args.conns,
                                         check=not args.no_check, timeout=args.timeout,
                                         fabric_bps=fabric))
            print(nccl_table(r), flush=True)
    if args.csv:
        write_rows(rows, Path(args.csv))
        console.print(f"CSV: {args.csv}")
    return 1 if any(r.wrong > 0 for r in rows) else 0


def cmd_model(args) -> int:
    """Full-scale predictions: iteration time and efficiency vs the single data centre."""
    from twin.model.full_scale import Job, parse_params, sweep
    from twin.output.csvrows import write_rows
    try:  # a parameter count or a rate that cannot be read; the message names the value
        job = Job(parse_params(args.params), args.dtype, args.model_parallel, args.compute,
                  args.optimizer, args.bucket_mb)
        rows = sweep(job, args.sites, args.per_site, args.distance, args.wan_rate, args.lan_rate,
                     args.algo, args.alpha_lan)
    except ValueError as exc:
        raise TwinError(f"model: {exc}") from None
    table = Table(title=f"model: {args.params} params {args.dtype}, gradient {job.gradient_bytes / 1e9:.1f} GB per "
                        f"replica, {args.per_site} ranks/site, LAN {args.lan_rate}, compute {args.compute:g} s")
    for col in ("sites", "km", "WAN", "algo", "overlap", "iteration s", "exposed s",
                "efficiency vs 1 DC"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.sites), f"{r.distance_km:g}", r.wan_rate, r.algo, "yes" if r.overlap else "no",
                      f"{r.iteration_s:.2f}", f"{r.exposed_s:.2f}", f"{r.efficiency:.1%}")
    console.print(table)
    if args.csv:
        write_rows([r.rounded() for r in rows], Path(args.csv))
        console.print(f"CSV: {args.csv}")
    return 0


def _shown_path(path: str) -> str:
    """Relative to the current directory where it lies below it (results/runs/...)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def _with_scale(topo, scale: str | None):
    if not scale:
        return topo
    try:
        return topo.with_scale(scale)
    except ValueError as exc:
        raise TwinError(f"--scale {scale!r}: {exc}") from None


def cmd_experiment(args) -> int:
    from twin.experiments import determinism
    from twin.output import plots
    from twin.output.csvrows import write_rows
    from twin.spec.topology import load_topology
    topo = _with_scale(load_topology(args.topology), args.scale)
    out = Path(args.results)
    if args.repeats < 1:
        raise TwinError(f"--repeats {args.repeats}: must be at least 1")
    from twin.measure.wakeup import describe, survey
    machine = survey(3.0)  # idle, before anything starts: the floor under the probes' tails
    _progress(f"machine: {describe(machine)}")
    rows, delays = determinism.run(topo, args.topology, seconds=args.seconds, progress=_progress,
                                   repeats=args.repeats)
    write_rows(rows, out / f"determinism-{topo.name}.csv")
    pooled = determinism.pooled(rows, delays, machine)
    if pooled:
        write_rows(pooled, out / f"determinism-{topo.name}-pooled.csv")
    plots.delay_cdf(delays, out / f"determinism-{topo.name}-owd-cdf.png",
                    f"probe one-way delay, {topo.name} ({topo.scale.describe()})")
    table = Table(title=f"determinism A/B on {topo.name} ({topo.scale.describe()})")
    for col in ("controller", "#", "phase", "what", "offered Mbit/s", "goodput Mbit/s", "share",
                "OWD p50 ms", "p99 ms", "PDV ms", "loss", "gap ms", "line late"):
        table.add_column(col)
    for r in rows:
        probe = r.metric.startswith("probe") or r.phase == "failover"
        table.add_row(r.controller, str(r.repeat + 1), r.phase, r.metric, f"{r.offered_mbps:.1f}" if not probe else "",
                      f"{r.goodput_mbps:.1f}" if not probe else "",
                      f"{r.share_of_offered:.1%}" if not probe else "",
                      f"{r.owd_p50_ms:.2f}" if probe else "", f"{r.owd_p99_ms:.2f}" if probe else "",
                      f"{r.pdv_ms:.2f}" if probe else "", f"{r.loss:.2%}" if probe else "",
                      f"{r.gap_ms:.1f}" if r.phase == "failover" else "",
                      f"{r.line_late_share:.2%}" if r.line_late_share is not None else "")
    console.print(table)
    for p in pooled:
        console.print(f"{p.controller}, {p.phase}: {p.probes} probes of {p.repeats} repeat(s) "
                      f"pooled: p50 {p.owd_p50_ms:.2f} ms, p99 {p.owd_p99_ms:.2f} ms "
                      f"({p.p99_over_propagation_ms:+.2f} ms over propagation), "
                      f"p99.9 {p.owd_p999_ms:.2f} ms")
    from twin.measure.noise import machine_warning
    warning = machine_warning([r.line_late_share for r in rows], out / f"determinism-{topo.name}.csv")
    if warning:
        console.print(f"[yellow]machine:[/] {warning}")
    console.print(f"CSV and plot: {out}/determinism-{topo.name}*")
    return 0


def cmd_campaign(args) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from twin.experiments import campaign as camp
    from twin.output import campaign_report as rep
    if args.action in ("plot", "report"):
        rows = rep.read(Path(args.file))
        out = Path(args.output or Path(args.file).with_suffix(""))
        plots = rep.plot(rows, out)
        md = out / "report.md"
        md.write_text(rep.report(rows, Path(args.file), plots))
        console.print(f"wrote {', '.join(str(p) for p in plots + [md])}")
        return 0
    c = camp.load_campaign(args.file)
    csv_path = Path(args.out or f"results/campaigns/{c.name}.csv")
    done = camp.existing_rows(csv_path)
    todo = [p for p in c.points() if p["row_id"] not in done]
    est = camp.estimate_seconds(c, todo) if todo else 0
    console.print(f"campaign {c.name}: {len(c.points())} measurements planned, {len(done)} already in "
                  f"{csv_path}, {len(todo)} to run; estimated {est / 60:.1f} min "
                  f"(topology {c.topology.name}, scale {c.scale or c.topology.scale.describe()})")
    if args.dry_run:
        for p in todo:
            console.print(f"  {p['row_id']}  {camp._describe(p)}, repeat {p['repeat']}")
        return 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(c.name, total=len(todo))
        written, failed = camp.run(c, csv_path, progress=lambda m: bar.console.log(m),
                                   on_point=lambda n, total: bar.update(task, completed=n))
    console.print(f"{written} rows written, {failed} failed rows; CSV: {csv_path}")
    return 0


def cmd_graph(args) -> int:
    from twin.output.topology_map import draw
    from twin.spec.topology import load_topology
    out = draw(load_topology(args.topology), Path(args.output))
    console.print(f"wrote {out}")
    return 0


# ---- parser ------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="twin", description="Long-haul AI fabric twin")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check what this machine offers").set_defaults(fn=cmd_doctor)
    sub.add_parser("setup", help="start dockerd/OVS and build the worker image").set_defaults(fn=cmd_setup)
    p = sub.add_parser("validate", help="validate topology files")
    p.add_argument("files", nargs="+")
    p.set_defaults(fn=cmd_validate)
    sub.add_parser("schema", help="print the topology JSON schema").set_defaults(fn=cmd_schema)
    p = sub.add_parser("up", help="bring a topology up")
    p.add_argument("topology")
    p.add_argument("--controller", default="none", choices=["none", "detpath", "baseline"],
                   help="none = static shortest-delay flows installed by the twin; detpath = "
                        "deterministic reserved paths (os-ken); baseline = best-effort L2 learning")
    p.add_argument("--detach", action="store_true", help="return once the twin is ready")
    p.add_argument("--scale", help="override the topology's bandwidth scale, e.g. 1/4000")
    p.add_argument("--calibrate", action="store_true", help="measure every link after bring-up")
    p.add_argument("--single-site", action="store_true",
                   help="bring up the equal-compute single-site twin of the topology")
    p.add_argument("--results", default="results/calibration")
    p.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop the running twin").set_defaults(fn=cmd_down)
    p = sub.add_parser("clean", help="remove everything any twin run left")
    p.add_argument("--images", action="store_true",
                   help="also remove worker images built from older traffic/ code")
    p.set_defaults(fn=cmd_clean)
    p = sub.add_parser("exec", help="run a command inside a worker container")
    p.add_argument("node")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_exec)
    sub.add_parser("inspect", help="show the running twin and its health").set_defaults(fn=cmd_inspect)
    p = sub.add_parser("controller", help="restart the running twin's controller")
    p.add_argument("action", choices=["restart"])
    p.set_defaults(fn=cmd_controller)
    p = sub.add_parser("link", help="change, cut or restore a live WAN link")
    p.add_argument("action", choices=["set", "down", "up"])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--delay")
    p.add_argument("--rate", help="real units; the topology's scale applies")
    p.add_argument("--loss")
    p.add_argument("--jitter")
    p.set_defaults(fn=cmd_link)
    p = sub.add_parser("calibrate", help="measure the running twin's links")
    p.add_argument("--results", default="results/calibration")
    p.set_defaults(fn=cmd_calibrate)
    for name, op in (("collective", None), ("allreduce", "allreduce")):
        p = sub.add_parser(name, help="run collectives across the twin, NCCL-tests style")
        p.add_argument("topology", nargs="?", help="bring this up (default: the running twin)")
        if op is None:
            p.add_argument("--op", default="allreduce",
                           choices=["allreduce", "reducescatter", "allgather", "broadcast", "alltoall"])
        else:
            p.set_defaults(op=op)
        p.add_argument("--algo", nargs="+", default=["ring"], choices=["ring", "hd", "tree", "hier"])
        p.add_argument("--sizes", default="1M:64M", help="'1M:64M' (doubling) or '1M,8M'")
        p.add_argument("--iters", type=int, default=5)
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--conns", type=int, default=1, help="TCP connections per peer")
        p.add_argument("--timeout", type=float, default=30.0, help="per-operation deadline (s)")
        p.add_argument("--no-check", action="store_true", help="move bytes only, no reduce/verify")
        p.add_argument("--csv", help="write the rows to this CSV")
        p.set_defaults(fn=cmd_collective)
    p = sub.add_parser("campaign", help="run a measurement campaign, or plot/report its CSV")
    p.add_argument("action", choices=["run", "plot", "report"])
    p.add_argument("file", help="campaign YAML (run) or campaign CSV (plot/report)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated duration")
    p.add_argument("--out", help="CSV to append to (default results/campaigns/NAME.csv)")
    p.add_argument("-o", "--output", help="plot/report directory (default: next to the CSV)")
    p.set_defaults(fn=cmd_campaign)
    p = sub.add_parser("experiment", help="run a packaged experiment")
    p.add_argument("name", choices=["determinism"])
    p.add_argument("topology")
    p.add_argument("--scale", help="override the topology's bandwidth scale, e.g. 1/4000")
    p.add_argument("--seconds", type=float, default=8.0, help="duration of each traffic phase")
    p.add_argument("--repeats", type=int, default=1,
                   help="repeat the channel phases (one bring-up per controller)")
    p.add_argument("--results", default="results/experiments")
    p.set_defaults(fn=cmd_experiment)
    p = sub.add_parser("model", help="analytic predictions at full scale")
    p.add_argument("--params", default="175B", help="model parameters, e.g. 175B")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--model-parallel", type=int, default=64,
                   help="tensor x pipeline ways: divides the gradient each data-parallel rank all-reduces")
    p.add_argument("--sites", type=int, nargs="+", default=[2, 4, 40])
    p.add_argument("--per-site", type=int, default=8, help="data-parallel ranks per site")
    p.add_argument("--distance", type=float, nargs="+", default=[100, 1000, 2000, 3000], help="km of fiber")
    p.add_argument("--wan-rate", nargs="+", default=["100Gbit", "400Gbit", "1.2Tbit", "3.2Tbit"])
    p.add_argument("--lan-rate", default="400Gbit")
    p.add_argument("--algo", nargs="+", default=["ring", "hier"], choices=["ring", "hd", "tree", "hier"])
    p.add_argument("--compute", type=float, default=16.0, help="compute seconds per iteration")
    p.add_argument("--optimizer", type=float, default=0.5)
    p.add_argument("--bucket-mb", type=float, default=25.0)
    p.add_argument("--alpha-lan", type=float, default=10e-6, help="per-step LAN latency (s)")
    p.add_argument("--csv")
    p.set_defaults(fn=cmd_model)
    p = sub.add_parser("graph", help="draw a topology (PNG or SVG)")
    p.add_argument("topology")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(fn=cmd_graph)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except InputError as exc:
        for line in exc.problems:
            error_line(line)
        return 2
    except TwinError as exc:
        error_line(f"twin: {exc}")
        return 1
    except KeyboardInterrupt:
        error_line("twin: interrupted; everything started was removed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
