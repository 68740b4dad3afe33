"""What detpath installs for reservations, read from the OpenFlow messages it sends a switch:
each reservation along its own admitted path, with its own backup path."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controllers import description
from controllers.detpath import DetPath
from tests.integration.emulation.test_reservation_paths import TOPOLOGY
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


@pytest.fixture
def detour(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_RUN_DIR", str(tmp_path))
    path = tmp_path / "detour.yaml"
    path.write_text(TOPOLOGY)
    topo = load_topology(path)
    state = synthetic_state(topo)
    for i, w in enumerate(state.workers, 1):
        w.ip = f"10.0.0.{i}"
    monkeypatch.setenv(description.MODEL_ENV, str(write_description(
        state, check_controller(topo, "detpath"))))
    return DetPath(), state


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
