"""``twin calibrate``: measure every path of the running twin against its configured delay and
rate (``twin up --calibrate`` prints the same table right after bring-up)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from rich.table import Table

from twin.cli.console import console, progress

if TYPE_CHECKING:
    from twin.emulation.state import TwinState
    from twin.spec.topology import Topology


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("calibrate", help="measure the running twin's links")
    p.add_argument("--results", default="results/calibration")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    from twin.spec.topology import load_topology, single_site
    state = runtime.require_state()
    topo = load_topology(state.topology_file)
    if state.topology.endswith("-single"):
        topo = single_site(topo)
    show_calibration(topo, state, args.results)
    return 0


def show_calibration(topo: Topology, state: TwinState, results: str) -> None:
    """Measure, write the CSV under ``results`` and print the table and its one-line summary."""
    from twin.measure.calibrate import (
        MISSED,
        NOT_MEASURED,
        OK,
        calibrate,
        fabric_of,
        summary,
        write_csv,
    )
    style = {OK: f"[green]{OK}[/]", MISSED: f"[red]{MISSED}[/]",
             NOT_MEASURED: f"[yellow]{NOT_MEASURED}[/]"}
    rows = calibrate(state, fabric_of(topo), progress=progress)
    if not rows:
        console.print(f"nothing to calibrate: {topo.name} has no WAN link")
        return
    out = Path(results) / f"calibration-{topo.name}-{state.run_id}.csv"
    write_csv(rows, out)
    table = Table(title=f"calibration of {topo.name} ({state.mechanism}; {state.scale})")
    for col in ("path", "RTT cfg ms", "RTT median ms", "err ms", "OWD p50 ms fwd/rev",
                "PDV ms fwd/rev", "|IPDV| p99 ms fwd/rev", "rate Mbit/s", "goodput Mbit/s",
                "wire ratio", "RTT", "PDV", "TCP"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r.src}->{r.dst}", f"{r.configured_rtt_ms:.2f}",
                      f"{r.measured_rtt_median_ms:.2f}", f"{r.rtt_error_ms:+.2f}",
                      f"{r.fwd_owd_p50_ms:.2f}/{r.rev_owd_p50_ms:.2f}",
                      f"{r.fwd_pdv_ms:.2f}/{r.rev_pdv_ms:.2f}",
                      f"{_ms(r.fwd_ipdv_abs_p99_ms)}/{_ms(r.rev_ipdv_abs_p99_ms)}",
                      f"{r.emulated_rate_mbps:g}", f"{r.goodput_mbps:.1f}", f"{r.wire_ratio:.3f}",
                      *(style[s] for s in r.statuses()))
    console.print(table)
    floor = rows[0].machine_pdv_floor_ms
    console.print(f"{summary(rows)}; this machine carries {rows[0].machine_tcp_ceiling_mbps:g} "
                  f"Mbit/s in one TCP flow through an unshaped switch"
                  + (f", and the probe through it varies {floor:.2f} ms (one-way PDV)"
                     if floor is not None else "") + f"; CSV: {out}")


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"
