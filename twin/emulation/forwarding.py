"""Forwarding without a controller: static shortest-delay flows and permanent neighbour entries.
"""

from __future__ import annotations

from twin.emulation.state import TwinState, WorkerInfo
from twin.host.processes import ns_prefix, parallel, run_argv
from twin.plan.routing import primary_next_hops
from twin.spec.topology import Topology


def install_static_arp(state: TwinState) -> None:
    """Permanent neighbour entries in every worker: no ARP broadcast ever crosses the WAN."""
    def one(w: WorkerInfo) -> None:
        batch = "".join(
            f"neigh replace {o.ip} lladdr {o.mac} dev {w.fabric_intf} nud permanent\n"
            for o in state.workers if o.name != w.name)
        if batch:
            run_argv(ns_prefix(w.pid) + ["ip", "-batch", "-"], stdin=batch,
                     what=f"static ARP in {w.name} failed")
    parallel(one, state.workers)


def next_hop_ports(topo: Topology, state: TwinState) -> dict[str, dict[str, int]]:
    """For each switch: destination site -> output port, along shortest one-way-delay paths."""
    port = {}
    for w in state.wan:
        port[(w.a, w.b)] = (w.switch_a, w.port_a)
        port[(w.b, w.a)] = (w.switch_b, w.port_b)
    table: dict[str, dict[str, int]] = {sw: {} for sw in state.switches}
    for src, hops in primary_next_hops(topo.graph()).items():
        for dst, hop in hops.items():
            sw, p = port[(src, hop)]
            table[sw][dst] = p
    return table


def static_flows(topo: Topology, state: TwinState) -> dict[str, list[str]]:
    """ovs-ofctl flow lines per switch: exact destination MAC -> port; everything else drops."""
    hops = next_hop_ports(topo, state)
    flows: dict[str, list[str]] = {sw: [] for sw in state.switches}
    for sw, site in state.switches.items():
        for w in state.workers:
            port = w.port if w.site == site else hops[sw][w.site]
            flows[sw].append(f"priority=100,dl_dst={w.mac},actions=output:{port}")
    return flows


def install_static_flows(topo: Topology, state: TwinState) -> None:
    def one(item: tuple[str, list[str]]) -> None:
        sw, lines = item
        run_argv(["ovs-ofctl", "-O", "OpenFlow13", "add-flows", sw, "-"],
                 stdin="\n".join(lines) + "\n", what=f"installing flows on {sw} failed")
    parallel(one, static_flows(topo, state).items())

