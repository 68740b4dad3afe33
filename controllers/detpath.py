"""detpath: the deterministic network. Explicit, pinned, proactive paths with reserved bandwidth.

Written against the Ryu API (OpenFlow 1.3), run on os-ken. Everything is installed when a switch
connects, from the twin's model: no learning, no flooding, no hashing.

Table 0 classifies: traffic of a reservation entering from a worker (exact match on its two
endpoints, one at each of the reservation's sites, and its TCP/UDP ports) gets the reservation's
own DSCP set; any other IP traffic from a worker gets its DSCP cleared (0, best effort). Only
the switch marks: a worker's own codepoint is never trusted, since everything after the first
switch (table 1's reservation paths, HTB's classes on every WAN and worker egress, the delay
line's lanes) tells reservations apart by DSCP alone, and a worker marking its traffic EF would
otherwise get a reservation's path and its strict-priority probe class. Traffic from WAN ports
keeps its mark: a switch of the twin set it. LLDP goes to the controller: once every switch is
programmed, an LLDP frame leaves every WAN port and the ports it arrives on are compared with the
model, so a miswired twin is reported instead of silently forwarding on the wrong links.
Table 1 forwards a reservation's traffic (its DSCP, the destination worker's MAC, the port it
came in by) along the path admission placed it on, through a fast-failover group per switch and
direction: the next hop on the path while its port is live, else the reservation's own backup
path (twin.plan.routing.reservation_steps). Everything else goes by exact destination MAC
through a fast-failover group per destination site (primary next hop, then an edge-disjoint
backup on port liveness). Ports a reservation sends 1+1 (replicated_udp_ports) leave the first
switch twice, once on the edge-disjoint backup path (install_replicas). Table-miss drops.
Isolation is done by the twin on every egress of the reservation's paths: HTB gives each
reservation's DSCP classes of its own with its rate and priority (OVS's userspace datapath does
not shape).
"""

from __future__ import annotations

from typing import Any

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.lib.packet import ether_types, ethernet, lldp, packet
from os_ken.ofproto import ofproto_v1_3

from controllers import description
from twin.plan.graph import fabric_graph
from twin.plan.routing import Leg, legs, next_hops, replica_mac, replica_routes, reservation_steps

ETH_IP = 0x0800
LLDP_SRC = "02:00:00:00:00:fe"
LLDP_ROUNDS = 3  # frames per port, 100 ms apart: a lossy link may drop one
LLDP_WAIT_S = 3.0
REPLICA_GROUPS = 1000  # group ids above this: 1+1 replication (below: fast failover per site)
RESERVATION_GROUPS = 100000  # above this: a reservation's next hop on its path, with failover
# Table 0: a worker's IP traffic that no reservation's flow (priority 200-260) classified has
# its DSCP cleared here, above the table-miss flow (0) that passes WAN traffic on unchanged.
UNTRUSTED_PRIORITY = 100


def lldp_frame(dpid: int, port: int) -> bytes:
    """An LLDP frame naming the switch (chassis "dpid:<hex>") and the port it leaves by."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE, src=LLDP_SRC,
                                       ethertype=ether_types.ETH_TYPE_LLDP))
    pkt.add_protocol(lldp.lldp((
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED,
                       chassis_id=f"dpid:{dpid:016x}".encode()),
        lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT, port_id=str(port).encode()),
        lldp.TTL(ttl=120), lldp.End())))
    pkt.serialize()
    return bytes(pkt.data)


def parse_lldp(data: bytes) -> tuple[int, int] | None:
    """(dpid, port) an LLDP frame of ours was sent from; None for anything else."""
    try:
        pkt = packet.Packet(data)
        found = pkt.get_protocol(lldp.lldp)
        if not found:
            return None
        chassis, port = found.tlvs[0].chassis_id.decode(), found.tlvs[1].port_id.decode()
        if not chassis.startswith("dpid:"):
            return None
        return int(chassis[5:], 16), int(port)
    except (ValueError, AttributeError, IndexError, UnicodeDecodeError):
        return None


Port = tuple[int, int]  # (dpid, port number)


def wiring_problems(expected: dict[Port, Port], seen: dict[Port, Port]) -> list[str]:
    """One line per WAN port whose LLDP did not arrive where the model says it should."""
    problems = []
    for src, dst in sorted(expected.items()):
        got = seen.get(src)
        if got is None:
            problems.append(f"no LLDP from dpid {src[0]} port {src[1]} arrived "
                            f"(model: dpid {dst[0]} port {dst[1]})")
        elif got != dst:
            problems.append(f"dpid {src[0]} port {src[1]} is wired to dpid {got[0]} port "
                            f"{got[1]}, the model says dpid {dst[0]} port {dst[1]}")
    return problems


class DetPath(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = description.load()
        self.graph = fabric_graph(self.model.wan)
        self.hops = next_hops(self.graph) if self.model.wan else {}
        self.replicas = replica_routes(self.model.reservations)
        self.legs = legs(self.model.reservations)
        for r in self.model.reservations:
            if r.replicated_udp_ports and not r.backup:
                self.logger.warning("reservation %s: no edge-disjoint backup path, so its ports "
                                    "%s are not sent 1+1", r.name, r.replicated_udp_ports)
        self.ready: set[str] = set()
        self.flow_count = 0
        self.datapaths: dict[str, Any] = {}
        self.seen: dict[tuple[int, int], tuple[int, int]] = {}  # (dpid, port) -> (dpid, port)
        self.verifying = False

    # ---- installation --------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        found = self.model.switch_by_dpid(dp.id)
        if not found:
            self.logger.warning("switch dpid %s is not in the model; ignoring it", dp.id)
            return
        name, sw = found
        self.datapaths[name] = dp
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
        # table 0: LLDP to the controller (wiring check); classify reserved traffic, then forward
        self.flow(dp, 0, 300, p.OFPMatch(eth_type=ether_types.ETH_TYPE_LLDP),
                  [p.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])
        self.install_classification(dp, name, site)
        for port in self.model.host_ports(name):  # unclassified from a worker: best effort
            self.flow(dp, 0, UNTRUSTED_PRIORITY, p.OFPMatch(in_port=port, eth_type=ETH_IP),
                      [p.OFPActionSetField(ip_dscp=0)], goto=1)
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
        gid = RESERVATION_GROUPS
        for leg in self.legs:
            gid = self.install_leg(dp, name, site, leg, gid)
        self.install_replicas(dp, name, site)

    def install_classification(self, dp, name: str, site: str) -> None:
        """Table 0: each reservation's traffic from a worker here to a worker at its other site
        (either direction of its ports) marked with the reservation's own DSCP."""
        p = dp.ofproto_parser
        mine = [w for w in self.model.workers if w["switch"] == name]
        for res in self.model.reservations:
            if site not in (res.src, res.dst) or res.src == res.dst:
                continue
            there = res.dst if site == res.src else res.src
            peers = [w for w in self.model.workers if w["site"] == there]
            for proto, ports, keys, dscp in ((6, res.tcp_ports, ("tcp_src", "tcp_dst"), res.dscp),
                                             (17, res.udp_ports, ("udp_src", "udp_dst"),
                                              res.probe_dscp)):
                for w in mine:
                    for peer in peers:
                        for tp in ports:
                            for key in keys:
                                m = p.OFPMatch(in_port=w["port"], eth_type=ETH_IP,
                                               ipv4_src=w["ip"], ipv4_dst=peer["ip"],
                                               ip_proto=proto, **{key: tp})
                                self.flow(dp, 0, 200, m, [p.OFPActionSetField(ip_dscp=dscp)],
                                          goto=1)

    def install_leg(self, dp, name: str, site: str, leg: Leg, gid: int) -> int:
        """Table 1: one direction of a reservation at this switch, along its own path; returns
        the last group id used. A hop back where the traffic came from (crankback) is output to
        IN_PORT: OpenFlow sends nothing out of the port a packet arrived on otherwise."""
        p, ofp = dp.ofproto_parser, dp.ofproto
        res = next(r for r in self.model.reservations if r.name == leg.reservation)
        dsts = [w for w in self.model.workers if w["site"] == leg.dst]
        for step in reservation_steps(leg, site):
            came_in = ([self.model.wan_port(site, step.came_from)] if step.came_from
                       else self.model.host_ports(name))
            buckets = []
            for hop in (step.primary, step.backup):
                if hop is None:
                    continue
                port = self.model.wan_port(site, hop)
                out = ofp.OFPP_IN_PORT if hop == step.came_from else port
                buckets.append(p.OFPBucket(watch_port=port, watch_group=ofp.OFPG_ANY,
                                           actions=[p.OFPActionOutput(out)]))
            gid += 1
            dp.send_msg(p.OFPGroupMod(datapath=dp, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_FF,
                                      group_id=gid, buckets=buckets))
            for in_port in came_in:
                for dscp in (res.dscp, res.probe_dscp):
                    for w in dsts:
                        m = p.OFPMatch(in_port=in_port, eth_type=ETH_IP, ip_dscp=dscp,
                                       eth_dst=w["mac"])
                        self.flow(dp, 1, 150, m, [p.OFPActionGroup(gid)])
        return gid

    def install_replicas(self, dp, name: str, site: str) -> None:
        """1+1: the first switch sends one copy the usual way and one down the edge-disjoint
        backup path; the backup copy carries a route-specific MAC that transit switches follow
        and the last switch swaps back. The receiver keeps whichever copy arrives first, so a
        cut on either path loses nothing (fast failover still loses what was in flight). A
        backup copy is taken only from the port it travels in by, the previous hop of the backup
        path: a worker sending to a route's MAC is not forwarded past the clearing of its DSCP."""
        p, ofp = dp.ofproto_parser, dp.ofproto
        gid = REPLICA_GROUPS
        for route in self.replicas:
            for idx, w in enumerate(self.model.workers):
                if w["site"] != route.dst:
                    continue
                mac = replica_mac(route.tag, idx)
                if site == route.src:
                    gid += 1
                    first = self.model.wan_port(site, route.primary[1])
                    second = self.model.wan_port(site, route.backup[1])
                    dp.send_msg(p.OFPGroupMod(
                        datapath=dp, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_ALL, group_id=gid,
                        buckets=[p.OFPBucket(actions=[p.OFPActionOutput(first)]),
                                 p.OFPBucket(actions=[p.OFPActionSetField(eth_dst=mac),
                                                      p.OFPActionOutput(second)])]))
                    for port in self.model.host_ports(name):
                        for tp in route.udp_ports:
                            m = p.OFPMatch(in_port=port, eth_type=ETH_IP, ip_proto=17, udp_dst=tp,
                                           eth_dst=w["mac"])
                            self.flow(dp, 0, 250, m, [p.OFPActionSetField(ip_dscp=route.dscp),
                                                      p.OFPActionGroup(gid)])
                elif site in route.backup[1:]:
                    j = route.backup.index(site)
                    prev = self.model.wan_port(site, route.backup[j - 1])
                    if site == route.dst:
                        actions = [p.OFPActionSetField(eth_dst=w["mac"]),
                                   p.OFPActionOutput(w["port"])]
                    else:
                        actions = [p.OFPActionOutput(self.model.wan_port(site, route.backup[j + 1]))]
                    self.flow(dp, 0, 260, p.OFPMatch(in_port=prev, eth_dst=mac), actions)

    # The reply can arrive before os-ken's own handler has moved the switch to MAIN_DISPATCHER
    # (a switch answers a barrier sent from switch_features at once; on a slow machine that
    # race was lost and the switch never counted as ready): take it in either state.
    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def barrier_reply(self, ev):
        found = self.model.switch_by_dpid(ev.msg.datapath.id)
        if not found:
            return
        self.ready.add(found[0])
        self.logger.info("%s ready (%d/%d)", found[0], len(self.ready), len(self.model.switches))
        if len(self.ready) == len(self.model.switches) and not self.verifying:
            self.verifying = True
            hub.spawn(self.verify_wiring_then_ready)

    # ---- wiring check (LLDP) --------------------------------------------------------
    def expected_wiring(self) -> dict[tuple[int, int], tuple[int, int]]:
        """Directed (dpid, port) -> (dpid, port) of every WAN link, as the model says."""
        dpid = {name: sw["dpid"] for name, sw in self.model.switches.items()}
        out = {}
        for w in self.model.wan:
            a, b = (dpid[w["switch_a"]], w["port_a"]), (dpid[w["switch_b"]], w["port_b"])
            out[a], out[b] = b, a
        return out

    def send_lldp(self) -> None:
        names = {sw["dpid"]: name for name, sw in self.model.switches.items()}
        for (dpid, port) in self.expected_wiring():
            dp = self.datapaths.get(names[dpid])
            if dp is None:
                continue
            p, ofp = dp.ofproto_parser, dp.ofproto
            data = lldp_frame(dpid, port)
            dp.send_msg(p.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER,
                                       in_port=ofp.OFPP_CONTROLLER,
                                       actions=[p.OFPActionOutput(port)], data=data))

    def wiring_report(self) -> dict:
        expected = self.expected_wiring()
        problems = wiring_problems(expected, self.seen)
        return {"wan_ports": len(expected), "wiring_verified": len(expected) - len(problems),
                "wiring_problems": problems}

    def verify_wiring_then_ready(self) -> None:
        expected = self.expected_wiring()
        if expected:
            self.seen.clear()
            for _ in range(LLDP_ROUNDS):
                self.send_lldp()
                hub.sleep(0.1)
            waited = 0.0
            while waited < LLDP_WAIT_S and any(self.seen.get(k) != v for k, v in expected.items()):
                hub.sleep(0.05)
                waited += 0.05
        report = self.wiring_report()
        for problem in report["wiring_problems"]:
            self.logger.error("wiring: %s", problem)
        self.logger.info("wiring: %d/%d WAN ports verified by LLDP", report["wiring_verified"],
                         report["wan_ports"])
        description.mark_ready(self.model, dict(report, app="detpath", switches=len(self.ready),
                                           flows=self.flow_count,
                                           reservations=[r.name for r in self.model.reservations]))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        src = parse_lldp(msg.data)
        if src is not None:
            self.seen[src] = (msg.datapath.id, msg.match["in_port"])

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev):
        self.logger.error("switch %s reported error type=%s code=%s", ev.msg.datapath.id,
                          ev.msg.type, ev.msg.code)
