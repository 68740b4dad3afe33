"""detpath's LLDP wiring check: the frames it sends and how it compares what arrived."""

from controllers.detpath import lldp_frame, parse_lldp, wiring_problems


def test_lldp_frame_names_switch_and_port():
    frame = lldp_frame(0x0000000000000102, 3)
    assert frame[12:14] == b"\x88\xcc"  # LLDP ethertype
    assert parse_lldp(frame) == (0x102, 3)


def test_other_frames_are_not_ours():
    assert parse_lldp(b"\xff" * 60) is None
    assert parse_lldp(b"") is None


def test_wiring_matches_model():
    expected = {(1, 3): (2, 3), (2, 3): (1, 3)}
    assert wiring_problems(expected, {(1, 3): (2, 3), (2, 3): (1, 3)}) == []


def test_miswired_and_silent_ports_are_named():
    expected = {(1, 3): (2, 3), (2, 3): (1, 3), (1, 4): (3, 3), (3, 3): (1, 4)}
    seen = {(1, 3): (3, 3), (3, 3): (1, 3), (2, 3): (1, 3)}
    problems = wiring_problems(expected, seen)
    assert "dpid 1 port 3 is wired to dpid 3 port 3, the model says dpid 2 port 3" in problems
    assert any(p.startswith("no LLDP from dpid 1 port 4") for p in problems)
    assert len(problems) == 3
