"""The learning switch behind Containernet's ``Controller`` and ``OVSController`` in the twin.

The baseline app (a reactive L2 learning switch) for a network built by hand: it floods on every
port of a switch except the switch-to-switch ports off a minimum-delay spanning tree of the
links the network had at start, so hosts and links added at run time are served too and meshed
switches do not loop. Loaded by ``twin.containernet.controller`` after os-ken's patching.
"""

from __future__ import annotations

from typing import Any

from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls

from controllers.baseline import Baseline


class LearningSwitch(Baseline):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.datapaths: dict[int, Any] = {}  # dpid -> os-ken Datapath, once configured
        self.inter_switch: dict[str, set[int]] = {}  # switch -> its ports to other switches
        for w in self.model.wan:
            self.inter_switch.setdefault(w["switch_a"], set()).add(w["port_a"])
            self.inter_switch.setdefault(w["switch_b"], set()).add(w["port_b"])

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def state_change(self, ev):
        dp = ev.datapath
        if ev.state == MAIN_DISPATCHER:
            self.datapaths[dp.id] = dp
        else:
            self.datapaths.pop(dp.id, None)

    def flood_ports(self, dpid: int, in_port: int) -> list[int]:
        dp = self.datapaths.get(dpid)
        if dp is None:
            return []
        ports = {p for p in dp.ports if p <= dp.ofproto.OFPP_MAX}  # not LOCAL, CONTROLLER...
        found = self.model.switch_by_dpid(dpid)
        if found:
            name = found[0]
            ports -= self.inter_switch.get(name, set()) - self.tree.get(name, set())
        return sorted(ports - {in_port})
