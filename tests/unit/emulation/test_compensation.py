"""Delay compensation's pure parts: what each frame has taken off, never a negative delay."""

import pytest

from tests.unit.drive.test_everywhere import worker
from twin.emulation import compensation
from twin.emulation.delayline import delayline_params
from twin.emulation.state import TwinState, WanInfo
from twin.emulation.tc import Compensation, Shaping, netem_args
from twin.measure.calibrate import path_compensation


def link(a: str, b: str, delay_s: float, first: float = 0.0, ab: float = 0.0, ba: float = 0.0,
         floor: float | None = None) -> WanInfo:
    return WanInfo(a=a, b=b, switch_a=f"s{a}", switch_b=f"s{b}", port_a=1, port_b=2,
                   intf_a=f"{a}{b}", intf_b=f"{b}{a}", km=1000.0, delay_s=delay_s, jitter_s=0.0,
                   loss=0.0, rate_bps=400e9, emulated_bps=100e6, queue_bytes=100_000,
                   floor_rtt_s=floor, comp_first_s=first, comp_transit_ab_s=ab,
                   comp_transit_ba_s=ba)


def state(*wan: WanInfo) -> TwinState:
    return TwinState(run_id="r", topology="t", topology_file="t.yaml", mechanism="delayline",
                     datapath="user", controller="none", scale="s", owner_pid=1, started=0.0,
                     wan=list(wan))


def test_netem_never_gets_a_negative_delay():
    short = netem_args(Shaping(delay_s=0.0001, compensation=Compensation(first_s=0.0004)))
    assert short[short.index("delay") + 1] == "0us", short
    long = netem_args(Shaping(delay_s=0.005, compensation=Compensation(first_s=0.0004)))
    assert long[long.index("delay") + 1] == "4600us", long


def test_a_residual_larger_than_the_compensation_never_makes_it_negative(monkeypatch):
    applied = []
    monkeypatch.setattr(compensation, "_apply", lambda st, w, zero=False: applied.append(w))
    w = link("a", "b", 0.0001)
    compensation._set_one_hop(state(w), w, -0.002, 0.0004, 0.0004)
    assert w.comp_first_s == 0.0 and w.comp_transit_ab_s == 0.0 and w.comp_transit_ba_s == 0.0
    compensation._set_one_hop(state(w), w, 0.0003, 0.0004, 0.0002)
    # a frame from another link pays one hop less the entry site's worker-to-worker floor
    assert w.comp_first_s == pytest.approx(0.0003)
    assert w.comp_transit_ab_s == pytest.approx(0.0003 - 0.0002)
    assert w.comp_transit_ba_s == pytest.approx(0.0003 - 0.0001)
    assert applied == [w, w]


def test_a_floor_longer_than_the_fiber_is_said():
    from twin.plan.dilation import Dilation
    short = link("a", "b", 0.0001, first=0.0003)
    assert short.floor_exceeds_delay(Dilation(1))
    assert not short.floor_exceeds_delay(Dilation(4))  # x4 the fiber: longer than the floor


def test_the_delay_line_is_told_each_kind_of_frame_s_compensation():
    p = delayline_params(Shaping(delay_s=0.006, compensation=Compensation(0.0003, 0.0002, 0.0001, 1, 2)))
    assert (p["comp_first_s"], p["comp_transit_ab_s"], p["comp_transit_ba_s"]) == (0.0003, 0.0002, 0.0001)
    assert (p["site_a"], p["site_b"]) == (1, 2)


def test_a_path_is_compensated_by_its_first_hop_and_then_each_transit():
    ab = link("a", "b", 0.005, first=0.0003, ab=0.0002, ba=0.00025, floor=0.0005)
    bc = link("b", "c", 0.004, first=0.0004, ab=0.00015, ba=0.0001)
    st = state(ab, bc)
    floor, taken = path_compensation(st, ["a", "b"])
    assert floor == 0.0005 and taken == pytest.approx(2 * 0.0003)
    floor, taken = path_compensation(st, ["a", "b", "c"])
    # a->b->c: first hop a-b, then b-c entered from b's side (its a end); back c->b->a: first
    # hop c-b, then b-a entered from b's side (the b end of a-b)
    assert floor is None
    assert taken == pytest.approx(0.0003 + 0.00015 + 0.0004 + 0.00025)


def test_a_path_lost_in_a_liveness_flap_is_measured_again_once_bfd_is_up(monkeypatch):
    answers = [[], [1.0] * (compensation.PINGS + compensation.WARMUP)]
    waited = []
    monkeypatch.setattr(compensation, "ping", lambda src, ip, count, interval: answers.pop(0))
    monkeypatch.setattr(compensation.liveness, "wait_bfd_up", lambda ports: waited.append(ports))
    monkeypatch.setattr(compensation, "RETRY_PAUSE_S", 0.0)
    st = state(link("a", "b", 0.001))
    st.controller = "detpath"
    got = compensation._rtts(st, worker("a1", "10.0.0.1"), worker("b1", "10.0.0.2"), compensation.PINGS)
    assert got == [0.001] * compensation.PINGS and waited == [["ab", "ba"]]


def test_a_path_that_never_answers_is_refused_after_every_attempt(monkeypatch):
    calls = []
    monkeypatch.setattr(compensation, "ping", lambda *a: calls.append(a) or [1.0] * 12)
    monkeypatch.setattr(compensation, "RETRY_PAUSE_S", 0.0)
    with pytest.raises(compensation.TwinError, match="9 of 20 pings answered .best of 3"):
        compensation._rtts(state(link("a", "b", 0.001)), worker("a1", "10.0.0.1"), worker("b1", "10.0.0.2"), 20)
    assert len(calls) == compensation.ATTEMPTS


def test_a_link_off_the_baselines_spanning_tree_is_not_measured_but_given_the_others_median(monkeypatch):
    """Under the baseline controller a triangle forwards over its two short links only: the
    long link's ends reach each other over both short ones, so pinging them measures two hops
    and the long link would have two hops' floor (and their propagation) taken off."""
    from dataclasses import replace
    ab = replace(link("a", "b", 0.005), port_a=1, port_b=1)
    bc = replace(link("b", "c", 0.005), port_a=2, port_b=1)
    ac = replace(link("a", "c", 0.020), port_a=2, port_b=2)
    st = state(ab, bc, ac)
    st.controller = "baseline"
    st.workers = [worker(f"{s}{i}", f"10.0.{n}.{i}") for n, s in enumerate("abc") for i in (1, 2)]
    route = {("a", "b"): [ab], ("b", "c"): [bc], ("a", "c"): [ab, bc]}  # the spanning tree's
    stages = {"zero": False}
    pinged = []

    def rtts(s, src, dst, count, interval_s=0.0):
        pinged.append((src.name, dst.name))
        if src.site == dst.site:
            return [0.0002] * count
        hops = route[tuple(sorted((src.site, dst.site)))]
        fiber = 0.0 if stages["zero"] else sum(2 * w.delay_s - 2 * w.comp_first_s for w in hops)
        return [0.0005 * len(hops) + fiber] * count

    # the delay stages at zero while the floor is measured, then at their delay less compensation
    monkeypatch.setattr(compensation, "_apply", lambda s, w, zero=False: stages.update(zero=zero))
    monkeypatch.setattr(compensation, "_rtts", rtts)
    said = []
    compensation.compensate_floor(st, said.append)
    assert not {("a1", "c1"), ("c1", "a1")} & set(pinged)
    assert ab.floor_rtt_s == pytest.approx(0.0005) and bc.floor_rtt_s == pytest.approx(0.0005)
    assert ac.floor_rtt_s is None and ac.measured_rtt_s is None
    assert ac.comp_first_s == pytest.approx((ab.comp_first_s + bc.comp_first_s) / 2)
    assert ab.comp_first_s == pytest.approx(0.00025)
    assert "a-c off the baseline's spanning tree" in said[-1]
