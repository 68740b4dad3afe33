"""detpath: the deterministic network. Explicit, pinned, proactive paths with reserved bandwidth.

Written against the Ryu API (OpenFlow 1.3), run on os-ken. Everything is installed when a switch
connects, from the twin's model: no learning, no flooding, no hashing.

Table 0 classifies: traffic of a reservation (its TCP/UDP ports) entering from a worker gets its
DSCP set; everything else passes unmarked. Table 1 forwards by exact destination MAC through a
fast-failover group per destination site (primary next hop, then an edge-disjoint backup on port
liveness). Table-miss drops. Isolation is done by the twin on every WAN egress: HTB gives the
DSCP class its reserved rate and priority (OVS's userspace datapath does not shape).
"""

from __future__ import annotations

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

from controllers import model as fabric
from controllers.paths import fabric_graph, next_hops

ETH_IP = 0x0800


class DetPath(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = fabric.load()
        self.graph = fabric_graph(self.model.wan)
        self.hops = next_hops(self.graph) if self.model.wan else {}
        self.ready: set[str] = set()
        self.flow_count = 0

    # ---- installation --------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        found = self.model.switch_by_dpid(dp.id)
        if not found:
            self.logger.warning("switch dpid %s is not in the model; ignoring it", dp.id)
            return
        name, sw = found
        self.install(dp, name, sw["site"])
        dp.send_msg(dp.ofproto_parser.OFPBarrierRequest(dp))
        self.logger.info("installed %s (%s): waiting for barrier", name, sw["site"])

    def flow(self, dp, table, priority, match, actions=None, goto=None):
        p, ofp = dp.ofproto_parser, dp.ofproto
        inst = []
        if actions:
            inst.append(p.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
        if goto is not None:
            inst.append(p.OFPInstructionGotoTable(goto))
        dp.send_msg(p.OFPFlowMod(datapath=dp, table_id=table, priority=priority, match=match,
                                 instructions=inst))
        self.flow_count += 1

    def install(self, dp, name: str, site: str) -> None:
        p, ofp = dp.ofproto_parser, dp.ofproto
        # start from a clean slate so a restarted controller installs exactly the same state
        dp.send_msg(p.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                 out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=p.OFPMatch()))
        dp.send_msg(p.OFPGroupMod(datapath=dp, command=ofp.OFPGC_DELETE, group_id=ofp.OFPG_ALL))
        # table 0: classify reserved traffic at the edge, then forward
        for port in self.model.host_ports(name):
            for res in self.model.reservations:
                for proto, ports, src_key, dst_key, dscp in (
                        (6, res.tcp_ports, "tcp_src", "tcp_dst", res.dscp),
                        (17, res.udp_ports, "udp_src", "udp_dst", res.probe_dscp)):
                    for tp in ports:
                        for key in (src_key, dst_key):
                            m = p.OFPMatch(in_port=port, eth_type=ETH_IP, ip_proto=proto, **{key: tp})
                            self.flow(dp, 0, 200, m, [p.OFPActionSetField(ip_dscp=dscp)], goto=1)
        self.flow(dp, 0, 0, p.OFPMatch(), goto=1)
        # table 1: exact destination MAC; remote sites through fast-failover groups
        groups = {}
        for i, dst in enumerate(sorted(self.hops.get(site, {})), start=1):
            primary, backup = self.hops[site][dst]
            buckets = [p.OFPBucket(watch_port=self.model.wan_port(site, hop), watch_group=ofp.OFPG_ANY,
                                   actions=[p.OFPActionOutput(self.model.wan_port(site, hop))])
                       for hop in (primary, backup) if hop]
            dp.send_msg(p.OFPGroupMod(datapath=dp, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_FF,
                                      group_id=i, buckets=buckets))
            groups[dst] = i
        for w in self.model.workers:
            if w["site"] == site:
                actions = [p.OFPActionOutput(w["port"])]
            else:
                actions = [p.OFPActionGroup(groups[w["site"]])]
            self.flow(dp, 1, 100, p.OFPMatch(eth_dst=w["mac"]), actions)
        self.flow(dp, 1, 0, p.OFPMatch(), [])  # table-miss: drop, never flood

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        found = self.model.switch_by_dpid(ev.msg.datapath.id)
        if not found:
            return
        self.ready.add(found[0])
        self.logger.info("%s ready (%d/%d)", found[0], len(self.ready), len(self.model.switches))
        if len(self.ready) == len(self.model.switches):
            fabric.mark_ready(self.model, {"app": "detpath", "switches": len(self.ready),
                                           "flows": self.flow_count,
                                           "reservations": [r.name for r in self.model.reservations]})

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev):
        self.logger.error("switch %s reported error type=%s code=%s", ev.msg.datapath.id,
                          ev.msg.type, ev.msg.code)
