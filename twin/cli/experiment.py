"""``twin experiment determinism|noise``: the packaged experiments.

determinism: the reserved-path A/B (detpath vs baseline) on one topology, with the machine's own
timer punctuality measured first; noise: the probe rows of determinism runs grouped by how late
the delay line itself was, to tell the network's misses from the machine's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from twin.cli.console import console, error_line, progress
from twin.cli.options import add_scale, scaled
from twin.errors import TwinError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("experiment", help="run a packaged experiment")
    names = p.add_subparsers(dest="name", required=True)
    d = names.add_parser("determinism", help="reserved paths vs best effort under interference")
    d.add_argument("topology")
    add_scale(d, dilation=False)
    d.add_argument("--seconds", type=float, default=8.0, help="duration of each traffic phase")
    d.add_argument("--repeats", type=int, default=1,
                   help="repeat the channel phases (one bring-up per controller)")
    d.add_argument("--results", default="results/experiments")
    n = names.add_parser("noise", help="group determinism probe rows by the delay line's lateness")
    n.add_argument("csv", nargs="+", help="determinism experiment CSVs (rows with line_late_*)")
    n.add_argument("--target-ms", type=float, default=1.0)
    n.add_argument("--out", help="also write the bands to this CSV")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return {"determinism": run_determinism, "noise": run_noise}[args.name](args)


def run_determinism(args: argparse.Namespace) -> int:
    from twin.experiments import determinism
    from twin.measure.noise import machine_warning
    from twin.measure.wakeup import describe, survey
    from twin.output import plots
    from twin.output.csvrows import write_rows
    from twin.spec.topology import load_topology
    topo = scaled(load_topology(args.topology), args.scale)
    if topo.scale.time != 1:
        raise TwinError(f"{args.topology}: scale.time: the determinism experiment runs in real time "
                        "(its failover and probe timers are not dilated); remove scale.time")
    out = Path(args.results)
    if args.repeats < 1:
        raise TwinError(f"--repeats {args.repeats}: must be at least 1")
    machine = survey(3.0)  # idle, before anything starts: the floor under the probes' tails
    progress(f"machine: {describe(machine)}")
    rows, samples = determinism.run(topo, args.topology, seconds=args.seconds, progress=progress,
                                    repeats=args.repeats)
    write_rows(rows, out / f"determinism-{topo.name}.csv")
    pooled = determinism.pooled(rows, samples, machine)
    if pooled:
        write_rows(pooled, out / f"determinism-{topo.name}-pooled.csv")
    plots.delay_cdf(samples.delays, out / f"determinism-{topo.name}-owd-cdf.png",
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
    warning = machine_warning([r.line_late_share for r in rows], out / f"determinism-{topo.name}.csv")
    if warning:
        console.print(f"[yellow]machine:[/] {warning}")
    console.print(f"CSV and plot: {out}/determinism-{topo.name}*")
    return 0


def run_noise(args: argparse.Namespace) -> int:
    from twin.measure.noise import bands, describe, read_rows
    from twin.output.csvrows import write_rows
    result = bands(read_rows([Path(f) for f in args.csv]), target_ms=args.target_ms)
    if not result:
        error_line("no detpath probe rows with line lateness in these files")
        return 1
    for b in result:
        print(describe(b))
    if args.out:
        write_rows(result, Path(args.out))
    return 0
