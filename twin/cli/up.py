"""``twin up``: bring a topology up, then hand over to Mininet's CLI or return (``--detach``)."""

from __future__ import annotations

import argparse
import time

from controllers.run import CONTROLLERS
from twin.cli.calibrate import show_calibration
from twin.cli.console import console, progress, shown_path
from twin.cli.options import add_scale, scaled


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("up", help="bring a topology up")
    p.add_argument("topology")
    p.add_argument("--controller", default="none", choices=CONTROLLERS,
                   help="none = static shortest-delay flows installed by the twin; detpath = "
                        "deterministic reserved paths (os-ken); baseline = best-effort L2 learning")
    p.add_argument("--detach", action="store_true", help="return once the twin is ready")
    add_scale(p)
    p.add_argument("--compensate", action=argparse.BooleanOptionalAction, default=None,
                   help="take the host's latency floor out of the delay stages, or (--no-compensate) "
                        "leave it in; default: the topology's delay_compensation (true)")
    p.add_argument("--calibrate", action="store_true", help="measure every link after bring-up")
    p.add_argument("--single-site", action="store_true",
                   help="bring up the equal-compute single-site twin of the topology")
    p.add_argument("--results", default="results/calibration")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    from twin.spec.topology import load_topology, single_site
    topo = scaled(load_topology(args.topology), args.scale, args.dilation)
    if args.compensate is not None:
        topo = topo.model_copy(update={"delay_compensation": args.compensate})
    if args.single_site:
        topo = single_site(topo)
    t0 = time.monotonic()
    net, state = runtime.up(topo, str(args.topology), args.controller, progress)
    console.print(f"twin [bold]{topo.name}[/] up in {time.monotonic() - t0:.1f} s: "
                  f"{len(state.workers)} workers, {len(state.switches)} switches, "
                  f"{len(state.wan)} WAN links; links: {state.mechanism}, OVS datapath: "
                  f"{state.datapath}; scale: {state.scale}; logs: {shown_path(state.log_dir)}")
    if args.calibrate:
        show_calibration(topo, state, args.results)
    if args.detach:
        console.print("detached; 'twin inspect', 'twin exec NODE -- CMD', 'twin down'")
        return 0
    from mininet.cli import CLI
    try:
        CLI(net)
    finally:
        progress("stopping")
        report = runtime.down()
        progress(report.summary())
    return 0
