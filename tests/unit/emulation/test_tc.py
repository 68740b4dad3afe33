"""tc command construction for both link mechanisms."""

import pytest

from twin.emulation.delayline import delayline_params
from twin.emulation.links import apply_shaping
from twin.emulation.tc import (
    Shaping,
    class_commands,
    class_rate_commands,
    htb_burst_bytes,
    netem_args,
    netem_leaves,
    netem_limits,
    nic_class_commands,
    shaping_commands,
)
from twin.plan.dilation import Dilation


def flat(cmds):
    return [" ".join(c) for c in cmds]


def test_delayline_mechanism_shapes_rate_with_byte_fifo_and_no_netem():
    cmds = flat(shaping_commands("tw1-eth3", Shaping(rate_bps=400e6, delay_s=0.01,
                                                     queue_bytes=980_000), "delayline"))
    assert cmds[0] == "tc qdisc replace dev tw1-eth3 root handle 1: htb default 10"
    assert any("htb rate 400000000bit ceil 400000000bit" in c for c in cmds)
    assert cmds[-1].endswith("bfifo limit 980000")
    assert not any("netem" in c for c in cmds)


def test_netem_mechanism_puts_netem_under_htb_with_queue_in_packets():
    cmds = flat(shaping_commands("tw1-eth3", Shaping(rate_bps=1e8, delay_s=0.0098, jitter_s=1e-4,
                                                     loss=1e-6, queue_bytes=3_000_000), "netem"))
    leaf = cmds[-1]
    assert "parent 1:10 handle 10: netem delay 9800us 100us distribution normal" in leaf
    assert "loss 0.0001%" in leaf
    assert leaf.endswith("limit 1982")  # 3 MB / 1514-byte frames, never netem's default 1000


def test_netem_without_rate_is_root_qdisc():
    cmds = flat(shaping_commands("x", Shaping(delay_s=0.005), "netem"))
    assert cmds[-1].startswith("tc qdisc replace dev x root handle 10: netem delay 5000us")


def test_bucket_is_one_frame_until_a_quarter_millisecond_of_traffic_is_more():
    assert htb_burst_bytes(1e6) == 1514
    assert htb_burst_bytes(100e6, 9014) == 9014  # 0.72 ms: what a real line takes for it
    assert htb_burst_bytes(1e9) == 31_250


def test_long_haul_delay_stage_serializes_at_the_link_rate():
    params = delayline_params(Shaping(rate_bps=100e6, delay_s=0.01))
    assert params["rate_bps"] == 100e6 and params["delay_s"] == 0.01
    netem = " ".join(netem_args(Shaping(rate_bps=25e6, delay_s=0.01)))
    assert netem.endswith("rate 25000000bit")
    assert params["class_dscps"] == []  # one FIFO unless the port has detpath's classes


def test_a_link_cut_mid_span_stays_cut_whatever_else_its_delay_stage_is_given():
    """A mid-span cut lives in the link's shaping, so a new delay, rate or loss (twin link set,
    compensation) is applied with the line still down, netem still dropping everything."""
    from twin.emulation.state import WanInfo
    link = WanInfo(a="beijing", b="wuhan", switch_a="tw1", switch_b="tw2", port_a=3, port_b=3,
                   intf_a="i1", intf_b="i2", km=1368.0, delay_s=0.0067, jitter_s=0.0, loss=0.001,
                   rate_bps=4e11, emulated_bps=1e8, queue_bytes=670_000)
    assert delayline_params(link.shaping(9000, Dilation(1)))["down"] is False
    assert "loss 0.1%" in " ".join(netem_args(link.shaping(9000, Dilation(1))))
    link.cut_mid_span = True
    link.delay_s = 0.010  # twin link set --delay 10ms during the cut
    cut = link.shaping(9000, Dilation(1))
    assert delayline_params(cut)["down"] is True and delayline_params(cut)["delay_s"] == 0.010
    assert "loss 100%" in " ".join(netem_args(cut))


def test_a_detpath_link_tells_its_delay_line_which_classes_to_serialize_apart():
    from twin.emulation.state import WanInfo
    w = WanInfo(a="x", b="y", switch_a="s1", switch_b="s2", port_a=1, port_b=1, intf_a="i1",
                intf_b="i2", km=100.0, delay_s=0.0005, jitter_s=0.0, loss=0.0, rate_bps=400e9,
                emulated_bps=100e6, queue_bytes=10**6, reserved_bps=50e6, class_dscps=[46, 34])
    params = delayline_params(w.shaping(9000, Dilation(1)))
    assert params["class_dscps"] == [46, 34] and params["rate_bps"] == 100e6


def _link(index=0, booked=100e6, rate=None, dscp=34, probe_dscp=46):
    from twin.plan.routing import LinkClass
    return LinkClass(f"r{index}", index, dscp, probe_dscp, rate if rate else booked, booked)


def test_a_new_line_rate_changes_every_detpath_class_in_place():
    cmds = flat(class_rate_commands("tw1-eth3", 200e6, [_link()], mtu=9000))
    assert all(c.startswith("tc class replace dev tw1-eth3") for c in cmds)
    rates = {c.split("classid ")[1].split()[0]: c.split(" rate ")[1].split()[0] for c in cmds}
    # the same classes, rates and ceilings class_commands builds the tree with
    full = flat(class_commands("tw1-eth3", 200e6, [_link()], 0, mtu=9000))
    assert cmds == [c for c in full if " class " in c]
    assert rates == {"1:1": "200000000bit", "1:40": "64000bit", "1:30": "2000000bit",
                     "1:20": "98000000bit", "1:10": "100000000bit"}


def test_interface_names_are_arguments_not_shell():
    # a hostile name stays one argv element; nothing is interpreted by a shell
    cmds = shaping_commands("x; rm -rf /", Shaping(rate_bps=1e6), "delayline")
    assert all(c.count("x; rm -rf /") == 1 for c in cmds)


@pytest.mark.parametrize("name", ["x\nqdisc del dev eth0 root", "a b", "", "sixteen-chars-xx"])
def test_names_that_could_inject_tc_batch_lines_are_refused(name):
    with pytest.raises(ValueError, match="not an interface name"):
        apply_shaping(name, None, Shaping(rate_bps=1e6), "delayline")


def test_deterministic_classes_give_probes_and_the_job_their_own_queues():
    cmds = flat(class_commands("tw1-eth3", 400e6, [_link(booked=200e6)], 670_000, rtt_s=0.0134))
    classes = {c.split("classid ")[1].split()[0]: c for c in cmds if " class " in c}
    assert "prio 0" in classes["1:30"] and "prio 1" in classes["1:20"] and "prio 2" in classes["1:10"]
    assert "rate 196000000bit" in classes["1:20"]  # reservation minus the probe class's 2%
    assert all("ceil 400000000bit" in c for c in classes.values())
    filters = [c for c in cmds if " filter " in c]
    assert any("dsfield 0x88 0xfc flowid 1:20" in f for f in filters)  # AF41 -> job
    assert any("dsfield 0xb8 0xfc flowid 1:30" in f for f in filters)  # EF -> probes
    assert any("dport 3784 0xffff flowid 1:40" in f for f in filters)  # BFD before everything
    assert any(c.endswith("handle 20: bfifo limit 335000") for c in cmds)  # one BDP of 200 Mbit


def test_each_reservation_on_a_link_gets_classes_and_a_rate_of_its_own():
    # r0 booked here; r1 only passes here on its backup path: its classes, nothing booked
    cmds = flat(class_commands("x", 100e6, [_link(0, 60e6), _link(1, 0.0, rate=30e6, dscp=36,
                                                                  probe_dscp=44)], 10**6))
    classes = {c.split("classid ")[1].split()[0]: c for c in cmds if " class " in c}
    assert set(classes) == {"1:1", "1:40", "1:20", "1:30", "1:120", "1:130", "1:10"}
    assert "rate 58800000bit" in classes["1:20"] and "rate 8000bit" in classes["1:120"]
    assert "rate 40000000bit" in classes["1:10"]  # what no reservation booked
    filters = [c for c in cmds if " filter " in c]
    assert any("dsfield 0x90 0xfc flowid 1:120" in f for f in filters)  # AF42 -> r1's job
    assert any("dsfield 0xb0 0xfc flowid 1:130" in f for f in filters)  # VOICE-ADMIT -> probes
    prefs = [f.split(" prio ")[1].split()[0] for f in filters]
    assert len(prefs) == len(set(prefs))  # one filter priority per class


def test_jumbo_frames_size_buckets_quantum_and_queues():
    cmds = flat(shaping_commands("x", Shaping(rate_bps=1e6, mtu=9000), "delayline"))
    klass = next(c for c in cmds if "classid 1:10" in c)
    assert " burst 9014 " in klass  # one jumbo frame: HTB cannot send a frame without it
    assert "quantum 9014" in klass  # HTB sends whole frames: a quantum below one frame starves
    assert cmds[-1].endswith(f"bfifo limit {64 * 9014}")


def _worker(index=0, rate=50e6, dscp=34, probe_dscp=46, peers=("10.0.1.1",)):
    from twin.emulation.tc import WorkerLinkClass
    return WorkerLinkClass(index=index, dscp=dscp, probe_dscp=probe_dscp, rate_bps=rate,
                           tcp_ports=(29500,), udp_ports=(7100,), peers=peers)


def test_worker_links_give_each_reservation_its_rate_toward_its_peers_only():
    cmds = flat(nic_class_commands("tw2-eth1", 100e6, [_worker()], mtu=9000))
    classes = {c.split("classid ")[1].split()[0]: c for c in cmds if " class " in c}
    assert "prio 0" in classes["1:30"] and "prio 1" in classes["1:20"] and "prio 2" in classes["1:10"]
    assert "rate 50000000bit" in classes["1:20"] and "rate 48000000bit" in classes["1:10"]
    assert all("ceil 100000000bit" in c for c in classes.values())  # all may use the line
    filters = [c for c in cmds if " filter " in c]
    # the worker's own frames by peer and port
    assert any("dst 10.0.1.1/32 match ip protocol 6 0xff match ip dport 29500 0xffff flowid 1:20"
               in f for f in filters)
    assert any("dst 10.0.1.1/32 match ip protocol 17 0xff match ip sport 7100 0xffff flowid 1:30"
               in f for f in filters)
    # never by the DSCP: on the NIC it is the worker's own, and EF would buy strict priority
    assert not any("dsfield" in f for f in filters)
    assert all(" dst 10.0.1.1/32 " in f for f in filters)
    # the switch port facing the worker sees the peers as sources, and the marks a switch set
    port = flat(nic_class_commands("tw2-eth1", 100e6, [_worker()], mtu=9000, toward_worker=True))
    assert any("src 10.0.1.1/32" in c for c in port) and not any("dst 10.0.1" in c for c in port)
    assert any("dsfield 0x88 0xfc flowid 1:20" in f for f in port)
    assert any("dsfield 0xb8 0xfc flowid 1:30" in f for f in port)
    # reservations larger than the link share what the probes leave
    big = flat(nic_class_commands("x", 100e6, [_worker(0, 300e6), _worker(1, 100e6, 36, 44)],
                                  mtu=9000))
    assert any("classid 1:20" in c and "rate 73500000bit" in c for c in big)
    assert any("classid 1:120" in c and "rate 24500000bit" in c for c in big)


def test_detpath_classes_keep_the_netem_delay_where_netem_carries_it():
    """On a kernel with netem the WAN port's tree is replaced by the classes: every class's queue
    must then be the netem (a bfifo would drop the fiber's delay without a word)."""
    stage = Shaping(rate_bps=100e6, delay_s=0.0068, loss=0.001, mtu=9000)
    cmds = flat(class_commands("x", 100e6, [_link(booked=50e6)], 500_000, rtt_s=0.0136, mtu=9000,
                               delay_stage=stage))
    leaves = [c for c in cmds if " qdisc replace dev x parent 1:" in c]
    assert len(leaves) == 4  # BFD, probes, job, best effort
    assert all("netem delay 6800us" in c and "rate 100000000bit" in c for c in leaves)
    plain = flat(class_commands("x", 100e6, [_link(booked=50e6)], 500_000, mtu=9000))
    assert all(" bfifo limit " in c for c in plain if " qdisc replace dev x parent 1:" in c)


def test_netem_leaves_are_found_in_tc_output():
    shown = ("qdisc htb 1: root refcnt 2 r2q 10 default 0x10 direct_packets_stat 0\n"
             "qdisc netem 10: parent 1:10 limit 1000 delay 6.8ms\n"
             "qdisc netem 20: parent 1:20 limit 1000 delay 6.8ms\n"
             "qdisc netem 30: parent 1:30 limit 1000 delay 6.8ms\n")
    assert netem_leaves(shown) == [("10:", "1:10"), ("20:", "1:20"), ("30:", "1:30")]
    assert netem_leaves("qdisc netem 10: root refcnt 2 limit 1000 delay 5ms\n") == [("10:", "root")]


def test_netem_limits_are_read_per_leaf():
    shown = ("qdisc htb 1: root refcnt 2 r2q 10 default 0x10 direct_packets_stat 0\n"
             "qdisc netem 10: parent 1:10 limit 1982 delay 20ms  10ms\n"
             "qdisc netem 20: parent 1:20 limit 1000 delay 6.8ms\n"
             "qdisc bfifo 30: parent 1:30 limit 48448b\n")
    assert netem_limits(shown) == {"10:": 1982, "20:": 1000}


def test_delay_line_lateness_is_read_between_two_dumps_and_never_flatters():
    from twin.emulation.delayline import lateness
    before = {"late_hist_pow2_us": [5, 0, 0, 100] + [0] * 24}
    after = {"late_hist_pow2_us": [5, 0, 0, 1090] + [0] * 5 + [9, 0, 1] + [0] * 16}
    late = lateness(before, after)
    assert late["frames"] == 1000  # only what was released in between
    assert late["late_p99_ms"] == 0.008  # 4-8 us bucket: its upper edge
    assert late["late_p999_ms"] == 0.512  # the 999th frame is in the 256-512 us bucket
    assert late["late_share"] == 0.001  # the one frame 1-2 ms late (>= 0.5 ms)
    assert lateness({}, {"late_hist_pow2_us": [0] * 28})["late_p99_ms"] == 0.0
