"""``twin trace SRC DST``: where the one-way delay between two workers goes, hop by hop, from
tcpdump on every interface of the forwarding path while probes flow (twin.measure.trace)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

from rich.table import Table

from controllers.run import CONTROLLERS
from twin.cli.console import console, progress, shown_path
from twin.cli.options import add_scale, scaled
from twin.errors import TwinError

if TYPE_CHECKING:
    from twin.emulation.state import TwinState
    from twin.measure.trace import TraceResult


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("trace", help="per-hop one-way delay between two workers")
    p.add_argument("src", help="sending worker, e.g. beijing1")
    p.add_argument("dst", help="receiving worker, e.g. wuhan1")
    p.add_argument("topology", nargs="?", help="bring this up (default: the running twin)")
    p.add_argument("--controller", default="none", choices=CONTROLLERS,
                   help="with TOPOLOGY: the controller to bring it up with")
    add_scale(p)
    p.add_argument("--seconds", type=float, default=5.0, help="how long probes flow")
    p.add_argument("--pps", type=float, default=1000.0, help="probe packets per second")
    p.add_argument("--size", type=int, default=None,
                   help="UDP payload bytes of each probe (default 200)")
    p.add_argument("--dscp", type=int, default=0, help="DSCP of the probes (46: EF)")
    p.add_argument("--port", type=int, default=None,
                   help="the probes' UDP port (default 7200, or the first above it in no "
                        "reservation; a reservation's port between the two sites is refused)")
    p.add_argument("--csv", help="write one row per hop to this CSV")
    p.add_argument("--pcaps", help="keep the captures (one pcap per interface) in this folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation.runtime import terminate_as_interrupt
    from twin.measure.trace import check_probe_size, trace
    from twin.output.csvrows import write_rows
    from twin.spec.topology import load_topology
    if args.seconds <= 0 or args.pps <= 0:
        raise TwinError("--seconds and --pps must be positive")
    if not 0 <= args.dscp <= 63:
        raise TwinError(f"--dscp {args.dscp}: a DSCP is 0-63")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise TwinError(f"--port {args.port}: a UDP port is 1-65535")
    if args.topology is None and (args.scale or args.controller != "none"):
        raise TwinError("--scale and --controller apply to a TOPOLOGY brought up for the trace")
    if args.topology:  # before bring-up; on the running twin trace() checks
        check_probe_size(args.size, load_topology(args.topology).mtu)
    with terminate_as_interrupt(), twin_up_for(args.topology, args.scale, args.controller) as state:
        result = trace(state, state.worker(args.src), state.worker(args.dst),
                       seconds=args.seconds, pps=args.pps, dscp=args.dscp,
                       port=args.port, size=args.size, pcaps=args.pcaps,
                       progress=progress)
    show(result, state)
    if args.csv:
        write_rows(result.rows, Path(args.csv))
        console.print(f"CSV: {args.csv}")
    if args.pcaps:
        console.print(f"pcaps: {shown_path(args.pcaps)}")
    return 0


@contextlib.contextmanager
def twin_up_for(topology: Optional[str], scale: Optional[str], controller: str
                ) -> Iterator[TwinState]:
    """The running twin, or ``topology`` at ``scale`` brought up for this command and torn
    down after it (also on Ctrl-C)."""
    from twin.emulation import runtime
    from twin.spec.topology import load_topology
    if topology is None:
        yield runtime.require_state()
        return
    topo = scaled(load_topology(topology), scale)
    _, state = runtime.up(topo, topology, controller, progress)
    try:
        yield state
    finally:
        progress(runtime.down().summary())


def show(result: TraceResult, state: TwinState) -> None:
    plan = result.plan
    table = Table(title=f"{plan.src.name} -> {plan.dst.name} via {' > '.join(plan.sites)} "
                        f"({state.topology}, {state.mechanism}; {state.scale})")
    for col in ("hop", "kind", "node", "interfaces", "packets", "lost", "reord",
                "median ms", "p99 ms", "mean ms"):
        table.add_column(col, justify="right" if col in ("hop", "packets", "lost", "reord")
                         or col.endswith("ms") else "left")
    for r in result.rows:
        if r.hop is None and r.kind == "sum":
            table.add_section()
        table.add_row("" if r.hop is None else str(r.hop), r.kind, r.node, r.interfaces,
                      str(r.packets), str(r.lost), str(r.reordered), _ms(r.median_ms),
                      _ms(r.p99_ms), _ms(r.mean_ms))
    console.print(table)
    hop_sum, probe = result.total("sum"), result.total("probe")
    if hop_sum.median_ms is not None and probe.median_ms is not None:
        console.print(
            f"the hops add up to {hop_sum.median_ms:.4f} ms (medians) and "
            f"{hop_sum.mean_ms:.4f} ms (means); the probe measured {probe.median_ms:.4f} ms "
            f"(median) and {probe.mean_ms:.4f} ms (mean): "
            f"{hop_sum.median_ms - probe.median_ms:+.4f} / "
            f"{(hop_sum.mean_ms or 0) - (probe.mean_ms or 0):+.4f} ms")
    if any(result.dropped_by_kernel):
        console.print("[yellow]tcpdump dropped packets:[/] " + ", ".join(
            f"{p.interface} {n}" for p, n in zip(plan.points, result.dropped_by_kernel) if n))
    console.print("clock: every capture is tcpdump -j host (kernel software timestamps, "
                  "CLOCK_REALTIME, ns), the clock the probe's sender stamps its packets with")


def _ms(v: Optional[float]) -> str:
    return "" if v is None else f"{v:.4f}"
