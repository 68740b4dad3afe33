"""baseline: best effort, the classic reactive L2 learning switch (Ryu's simple_switch_13 shape).

No reservations, no classes, one FIFO per port. Unknown destinations are flooded only on worker
ports and a minimum-delay spanning tree of the WAN (computed from the twin's model), so meshed
topologies do not loop. It does not reroute around a cut link: that is what best effort without
a deterministic service means here.
"""

from __future__ import annotations

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3

from controllers import description
from twin.plan.graph import fabric_graph
from twin.plan.routing import spanning_tree_ports


class Baseline(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = description.load()
        self.tree = spanning_tree_ports(fabric_graph(self.model.wan)) if self.model.wan else {}
        self.mac_to_port: dict[int, dict[str, int]] = {}
        self.ready: set[str] = set()

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        p, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(p.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                 out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=p.OFPMatch()))
        miss = [p.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
        self.add_flow(dp, 0, p.OFPMatch(), miss)
        dp.send_msg(p.OFPBarrierRequest(dp))

    def add_flow(self, dp, priority, match, actions):
        p, ofp = dp.ofproto_parser, dp.ofproto
        inst = [p.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(p.OFPFlowMod(datapath=dp, priority=priority, match=match, instructions=inst))

    def flood_ports(self, dpid: int, in_port: int) -> list[int]:
        found = self.model.switch_by_dpid(dpid)
        if not found:
            return []
        name = found[0]
        ports = set(self.model.host_ports(name)) | self.tree.get(name, set())
        return sorted(ports - {in_port})

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        p, ofp = dp.ofproto_parser, dp.ofproto
        in_port = msg.match["in_port"]
        eth = packet.Packet(msg.data).get_protocols(ethernet.ethernet)
        if not eth:
            return
        src, dst = eth[0].src, eth[0].dst
        table = self.mac_to_port.setdefault(dp.id, {})
        # learn only from worker ports and tree ports: anything else is a loop echo
        if in_port in self.flood_ports(dp.id, -1):
            table[src] = in_port
        if dst in table:
            actions = [p.OFPActionOutput(table[dst])]
            self.add_flow(dp, 1, p.OFPMatch(in_port=in_port, eth_dst=dst), actions)
        else:
            actions = [p.OFPActionOutput(port) for port in self.flood_ports(dp.id, in_port)]
        dp.send_msg(p.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                                   actions=actions, data=msg.data))

    # The reply can arrive before os-ken's own handler has moved the switch to MAIN_DISPATCHER
    # (a switch answers a barrier sent from switch_features at once; on a slow machine that
    # race was lost and the switch never counted as ready): take it in either state.
    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def barrier_reply(self, ev):
        found = self.model.switch_by_dpid(ev.msg.datapath.id)
        if found:
            self.ready.add(found[0])
            if len(self.ready) == len(self.model.switches):
                description.mark_ready(self.model, {"app": "baseline", "switches": len(self.ready)})
