"""The fabric graph: sites as nodes, one edge per WAN link. Built here only, with one set of edge
attributes, whether from the topology before anything starts (Topology.graph), from the running
twin's links (TwinState.wan) or from the description the controller reads:

- ``delay``: one-way propagation delay of the link, seconds (the routing weight)
- ``capacity``: the link's emulated rate, bit/s
- ``reserved``: bit/s booked by admitted reservations (0 until admission books some)
- ``ports``: site -> (switch, port) at each end, when the links are wired (not in the model)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx


def fabric_graph(wan: Iterable[Mapping[str, Any]], sites: Iterable[str] = ()) -> nx.Graph:
    """The graph of WAN links given as mappings with ``a``, ``b``, ``delay_s``, ``emulated_bps``
    and, once wired, ``switch_a``, ``port_a``, ``switch_b``, ``port_b`` (the fields of
    TwinState.wan). ``sites`` adds sites first, in their order, so that one without a link is
    in the graph too."""
    g = nx.Graph()
    g.add_nodes_from(sites)
    for w in wan:
        attrs: dict[str, Any] = {"delay": w["delay_s"], "capacity": w["emulated_bps"],
                                 "reserved": 0.0}
        if "port_a" in w:
            attrs["ports"] = {w["a"]: (w["switch_a"], w["port_a"]),
                              w["b"]: (w["switch_b"], w["port_b"])}
        g.add_edge(w["a"], w["b"], **attrs)
    return g
