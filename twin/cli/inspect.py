"""``twin inspect``: the running twin's workers and long-haul links, and whether all of it runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.table import Table

from twin.cli.console import console, error_line, shown_path

if TYPE_CHECKING:
    from twin.emulation.state import TwinState


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("inspect", help="show the running twin and its health").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from twin.emulation import runtime
    from twin.host.processes import alive as ctl_alive
    from twin.units import format_rate, format_time
    s = runtime.require_state()
    console.print(f"run {s.run_id}: topology {s.topology} ({s.topology_file}); controller "
                  f"{s.controller}; links {s.mechanism}; OVS {s.datapath} datapath; scale {s.scale}; "
                  f"logs {shown_path(s.log_dir)}")
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
    for wan in s.wan:
        alive = ""
        if wan.delayline:
            pid = wan.delayline.pid
            alive = f"delay line pid {pid}" + ("" if ctl_alive(pid) else " [red]DEAD[/]")
        links.add_row(f"{wan.a}-{wan.b}", f"{wan.intf_a} / {wan.intf_b}", f"{wan.km:.0f}",
                      format_time(wan.delay_s), format_time(wan.jitter_s) if wan.jitter_s else "-",
                      f"{wan.loss:.3%}" if wan.loss else "-", format_rate(wan.rate_bps),
                      format_rate(wan.emulated_bps), f"{wan.queue_bytes / 1e3:.0f} KB",
                      alive or "netem")
    console.print(links)
    console.print(compensation_table(s))
    reservations_tables(s)
    problems = runtime.health(s)
    for line in problems:
        error_line(f"problem: {line}")
    if not problems:
        console.print("health: all workers, delay lines"
                      + (" and the controller" if s.controller != "none" else "") + " running")
    return 1 if problems else 0


def compensation_table(s: TwinState) -> Table:
    """Per link, round trips between the first workers of its ends, in fabric time: as
    configured, the host's floor with the delay stages at zero, what the delay stages take off,
    and what bring-up measured once compensated."""
    from twin.emulation.compensation import configured_one_hop_rtt_s
    k = s.time
    title = "delay compensation (one-hop round trips" + (
        f", fabric time: host / {k.k:g})" if k.k != 1 else ")")
    if not s.compensated:
        title += ": off"
    t = Table(title=title)
    for col in ("link", "configured", "floor", "compensation", "measured", "note"):
        t.add_column(col)

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{k.fabric_s(v) * 1e3:.3f} ms"

    for w in s.wan:
        note = "floor exceeds the fiber: as short as this machine can make it" \
            if w.floor_exceeds_delay(k) else ""
        if w.floor_rtt_s is None and s.compensated:
            note = "not measured: no frame crosses it one hop at a time (off the spanning tree)"
        t.add_row(f"{w.a}-{w.b}", ms(configured_one_hop_rtt_s(s, w, s.site_delay_s)),
                  ms(w.floor_rtt_s), ms(2 * w.comp_first_s), ms(w.measured_rtt_s), note)
    return t


def reservations_tables(s: TwinState) -> None:
    """Every admitted reservation with its path and backup path, and per WAN link the rate
    admission booked on it (primary paths only) and the reservations whose classes it carries."""
    from twin.emulation.controller import admitted_reservations
    from twin.plan.reservations import reserved_per_link
    from twin.plan.routing import link_classes
    from twin.units import format_rate
    admitted = admitted_reservations() if s.controller == "detpath" else []
    if not admitted:
        return
    table = Table(title="reservations")
    for col in ("reservation", "sites", "rate (emulated)", "dscp job/probe", "path", "backup path"):
        table.add_column(col)
    for r in admitted:
        table.add_row(r.name, f"{r.src}-{r.dst}", format_rate(r.rate_bps),
                      f"{r.dscp}/{r.probe_dscp}", " > ".join(r.path) or "-",
                      " > ".join(r.backup) or "-")
    console.print(table)
    booked = reserved_per_link(admitted)
    per_link = Table(title="reserved rate per link")
    for col in ("link", "booked", "rate (emulated)", "booked share", "primary of", "backup of"):
        per_link.add_column(col)
    for wan in s.wan:
        on = link_classes(admitted, wan.a, wan.b)
        load = booked.get(frozenset((wan.a, wan.b)), 0.0)
        per_link.add_row(f"{wan.a}-{wan.b}", format_rate(load), format_rate(wan.emulated_bps),
                         f"{load / wan.emulated_bps:.0%}",
                         ", ".join(c.reservation for c in on if c.booked_bps) or "-",
                         ", ".join(c.reservation for c in on if not c.booked_bps) or "-")
    console.print(per_link)
