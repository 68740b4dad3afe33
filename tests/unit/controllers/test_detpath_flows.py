"""What detpath installs for reservations, read from the OpenFlow messages it sends a switch:
each reservation along its own admitted path, with its own backup path."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controllers import description
from controllers.detpath import REPLICA_GROUPS, RESERVATION_GROUPS, DetPath
from tests.integration.emulation.test_reservation_paths import TOPOLOGY
from tests.locations import TOPOS
from tests.unit.emulation.test_forwarding import synthetic_state
from twin.emulation.build import check_controller
from twin.emulation.controller import write_description
from twin.spec.topology import load_topology


class RecordingDatapath:
    """A switch as the app sees it: the OpenFlow 1.3 encoders, and every message it is sent."""

    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

    def __init__(self, dpid: int):
        self.id = dpid
        self.sent: list = []

    def send_msg(self, msg) -> None:
        self.sent.append(msg)


def app_for(path, tmp_path, monkeypatch):
    """detpath as it starts for the topology at ``path`` (workers' addresses made up)."""
    monkeypatch.setenv("TWIN_RUN_DIR", str(tmp_path))
    topo = load_topology(path)
    state = synthetic_state(topo)
    for i, w in enumerate(state.workers, 1):
        w.ip = f"10.0.0.{i}"
    monkeypatch.setenv(description.MODEL_ENV, str(write_description(
        state, check_controller(topo, "detpath"))))
    return DetPath(), state


@pytest.fixture
def detour(tmp_path, monkeypatch):
    path = tmp_path / "detour.yaml"
    path.write_text(TOPOLOGY)
    return app_for(path, tmp_path, monkeypatch)


def installed(app: DetPath, site: str) -> RecordingDatapath:
    name = next(n for n, sw in app.model.switches.items() if sw["site"] == site)
    dp = RecordingDatapath(app.model.switches[name]["dpid"])
    app.install(dp, name, site)
    return dp


def group_ports(dp: RecordingDatapath, gid: int) -> list[tuple[int, int]]:
    """(watched port, output port) of each bucket of group ``gid``."""
    mod = next(m for m in dp.sent if isinstance(m, ofproto_v1_3_parser.OFPGroupMod)
               and m.group_id == gid)
    return [(b.watch_port, b.actions[0].port) for b in mod.buckets]


def reservation_flows(dp: RecordingDatapath, dscp: int) -> list:
    return [m for m in dp.sent if isinstance(m, ofproto_v1_3_parser.OFPFlowMod)
            and m.table_id == 1 and m.match.get("ip_dscp") == dscp]


def test_the_detoured_reservation_leaves_its_first_switch_towards_the_detour(detour):
    app, state = detour
    dp = installed(app, "x")
    port = {nb: app.model.wan_port("x", nb) for nb in ("y", "z")}
    y1 = next(w for w in state.workers if w.site == "y")
    second = reservation_flows(dp, 36)  # the second reservation's job DSCP (assigned AF42)
    towards_y = [f for f in second if f.match.get("eth_dst") == y1.mac]
    from_worker = [f for f in towards_y if f.match["in_port"] == 1]
    assert len(from_worker) == 1
    gid = from_worker[0].instructions[0].actions[0].group_id
    # round z while its port is live, else the direct link (its backup path)
    assert group_ports(dp, gid) == [(port["z"], port["z"]), (port["y"], port["y"])]
    first = [f for f in reservation_flows(dp, 34) if f.match["in_port"] == 1
             and f.match.get("eth_dst") == y1.mac]
    gid = first[0].instructions[0].actions[0].group_id
    assert group_ports(dp, gid) == [(port["y"], port["y"]), (port["z"], port["z"])]


def test_a_switch_further_along_sends_it_back_when_its_next_hop_is_cut(detour):
    app, _ = detour
    dp = installed(app, "z")
    port = {nb: app.model.wan_port("z", nb) for nb in ("x", "y")}
    from_x = [f for f in reservation_flows(dp, 36) if f.match["in_port"] == port["x"]]
    gid = from_x[0].instructions[0].actions[0].group_id
    assert group_ports(dp, gid) == [(port["y"], port["y"]),
                                    (port["x"], ofproto_v1_3.OFPP_IN_PORT)]  # crankback


def test_classification_matches_the_reservations_endpoints_and_ports(detour):
    app, state = detour
    dp = installed(app, "x")
    x1, y1 = (next(w for w in state.workers if w.site == s) for s in ("x", "y"))
    marks = [m for m in dp.sent if isinstance(m, ofproto_v1_3_parser.OFPFlowMod)
             and m.table_id == 0 and m.priority == 200]
    assert marks and all(m.match["ipv4_src"] == x1.ip and m.match["ipv4_dst"] == y1.ip
                         for m in marks)
    dscp_of = {(m.match.get("udp_dst") or m.match.get("tcp_dst")):
               m.instructions[0].actions[0].value for m in marks
               if m.match.get("udp_dst") or m.match.get("tcp_dst")}
    assert dscp_of == {29500: 34, 7100: 46, 29600: 36, 7200: 44}


def pipeline(dp: RecordingDatapath, packet: dict) -> tuple[dict, list]:
    """What the switch does with ``packet`` (match fields by their OpenFlow names), read from the
    flows it was sent: from table 0, the highest-priority flow that matches, its set-field
    actions applied, on to the table it names. Returns the packet as it leaves and the outputs
    and groups it is sent to ([]: dropped)."""
    flows = [m for m in dp.sent if isinstance(m, ofproto_v1_3_parser.OFPFlowMod)
             and m.command == ofproto_v1_3.OFPFC_ADD]
    packet, out, table = dict(packet), [], 0
    while table is not None:
        hits = [f for f in flows if f.table_id == table
                and all(packet.get(k) == v for k, v in f.match.items())]
        assert hits, f"no flow of table {table} matches {packet} (table-miss flows match all)"
        top = max(f.priority for f in hits)
        chosen = [f for f in hits if f.priority == top]
        assert len(chosen) == 1, f"{len(chosen)} flows of priority {top} match {packet}"
        table = None
        for inst in chosen[0].instructions:
            if isinstance(inst, ofproto_v1_3_parser.OFPInstructionGotoTable):
                table = inst.table_id
                continue
            for action in inst.actions:
                if isinstance(action, ofproto_v1_3_parser.OFPActionSetField):
                    packet[action.key] = action.value
                elif isinstance(action, ofproto_v1_3_parser.OFPActionGroup):
                    out.append(("group", action.group_id))
                elif isinstance(action, ofproto_v1_3_parser.OFPActionOutput):
                    out.append(("port", action.port))
    return packet, out


def udp(src, dst, port: int, dscp: int, in_port=None, proto=17) -> dict:
    key = "udp" if proto == 17 else "tcp"
    return {"in_port": src.port if in_port is None else in_port, "eth_type": 0x0800,
            "eth_dst": dst.mac, "ipv4_src": src.ip, "ipv4_dst": dst.ip, "ip_proto": proto,
            "ip_dscp": dscp, f"{key}_src": 40000, f"{key}_dst": port}


def test_a_workers_own_codepoint_is_cleared_and_gets_no_reservations_path(detour):
    """x1 marks its own UDP to y1 with the second reservation's probe codepoint (44) on a port no
    reservation has: it leaves x best effort, towards y by the per-site group, not round the
    detour the second reservation was given."""
    app, state = detour
    dp = installed(app, "x")
    x1, y1 = (next(w for w in state.workers if w.site == s) for s in ("x", "y"))
    for dscp, port, proto in ((44, 9999, 17), (46, 9999, 17), (36, 5201, 6), (34, 7100, 6)):
        left, out = pipeline(dp, udp(x1, y1, port, dscp, proto=proto))
        assert left["ip_dscp"] == 0, (dscp, port, proto)
        assert len(out) == 1 and out[0][0] == "group" and out[0][1] < REPLICA_GROUPS, out
    # the reservation's own traffic is marked by the switch, whatever the worker wrote
    for dscp in (0, 46):
        left, out = pipeline(dp, udp(x1, y1, 7200, dscp))
        assert left["ip_dscp"] == 44 and out[0][1] > RESERVATION_GROUPS, out


def test_marks_from_the_wan_are_kept(detour):
    """A switch of the twin set them: z passes the second reservation on towards y."""
    app, state = detour
    dp = installed(app, "z")
    x1, y1 = (next(w for w in state.workers if w.site == s) for s in ("x", "y"))
    left, out = pipeline(dp, udp(x1, y1, 7200, 44, in_port=app.model.wan_port("z", "x")))
    assert left["ip_dscp"] == 44 and out[0][1] > RESERVATION_GROUPS, out


def test_a_worker_cannot_send_onto_a_backup_path_with_a_replica_mac(tmp_path, monkeypatch):
    """fntf-4site sends UDP 7101 beijing-shanghai 1+1: a worker of a site on the backup path
    that writes the backup copy's MAC (and EF) itself is not forwarded along it."""
    from twin.plan.routing import replica_mac
    app, state = app_for(TOPOS / "fntf-4site.yaml", tmp_path, monkeypatch)
    route = app.replicas[0]
    transit = route.backup[1]
    dp = installed(app, transit)
    me = next(w for w in state.workers if w.site == transit)
    dst_index, dst = next((i, w) for i, w in enumerate(state.workers) if w.site == route.dst)
    forged = dict(udp(me, dst, 7101, route.dscp), eth_dst=replica_mac(route.tag, dst_index))
    assert pipeline(dp, forged)[1] == []  # no flow for that MAC from a worker: dropped
    # the copy itself, from the previous hop of the backup path, goes on
    prev = app.model.wan_port(transit, route.backup[0])
    _, out = pipeline(dp, dict(forged, in_port=prev))
    assert out == [("port", app.model.wan_port(transit, route.backup[2]))]
