"""``twin trace``'s pure part: the capture plan from the twin's state, reading pcaps with scapy,
matching probe packets across capture points and the per-hop figures, on pcap files written
here with known timestamps."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter

from traffic.probe import HEADER, MAGIC
from twin.cli import main as cli
from twin.emulation.delayline import DelayLineSpec, delayline_params
from twin.emulation.state import TwinState, WanInfo, WorkerInfo
from twin.emulation.tc import Shaping
from twin.errors import TwinError
from twin.measure.trace import (
    CapturePoint,
    TracePlan,
    analyse,
    forwarding_path,
    pcap_folder,
    read_sightings,
    reordered,
    tcpdump_argv,
    trace_plan,
    unseen_points,
)

PORT = 7200
PAYLOAD = 200  # the probe's default datagram
FRAME = 14 + 20 + 8 + PAYLOAD  # what a capture reports as the frame's length on the wire
T0 = 1_700_000_000_123_456_789  # a send time in ns, as time.time_ns() gives it


def worker(site: int, name: str, k: int) -> WorkerInfo:
    return WorkerInfo(name=f"{name}{k}", site=name, index=k, ip=f"10.{site}.0.{k}",
                      mac=f"02:00:00:00:{site:02x}:{k:02x}", switch=f"tw{site}", port=k,
                      container=f"c-{name}{k}", pid=1000 * site + k, port_intf=f"tw{site}-eth{k}")


def wan(a: tuple[int, str], b: tuple[int, str], n: int, delay_s: float, delayline: bool = True,
        emulated_bps: float = 100e6) -> WanInfo:
    (ia, na), (ib, nb) = a, b
    dl = DelayLineSpec(name=f"twd{n}", end_a=f"twd{n}a", end_b=f"twd{n}b", params_file="", pid=0,
                       params=delayline_params(Shaping(rate_bps=emulated_bps, delay_s=delay_s))
                       ) if delayline else None
    return WanInfo(a=na, b=nb, switch_a=f"tw{ia}", switch_b=f"tw{ib}", port_a=10 + n,
                   port_b=10 + n, intf_a=f"tw{ia}-eth{10 + n}", intf_b=f"tw{ib}-eth{10 + n}",
                   km=1000.0, delay_s=delay_s, jitter_s=0.0, loss=0.0, rate_bps=400e9,
                   emulated_bps=emulated_bps, queue_bytes=1 << 20, delayline=dl)


def twin_state(wans: list[WanInfo], sites: list[str], controller: str = "none",
               mechanism: str = "delayline") -> TwinState:
    return TwinState(run_id="r", topology="t", topology_file="t.yaml", mechanism=mechanism,
                     datapath="netdev", controller=controller, scale="1/4000", owner_pid=0,
                     started=0.0, switches={f"tw{i}": s for i, s in enumerate(sites, 1)},
                     workers=[worker(i, s, k) for i, s in enumerate(sites, 1) for k in (1, 2)],
                     wan=wans)


TWO_SITES = twin_state([wan((1, "a"), (2, "b"), 1, 0.005)], ["a", "b"])


# ---- the plan ---------------------------------------------------------------------------

def test_the_plan_follows_a_frame_through_every_interface_of_a_delay_line_link():
    plan = trace_plan(TWO_SITES, TWO_SITES.worker("a1"), TWO_SITES.worker("b2"))
    assert plan.sites == ["a", "b"]
    assert [(p.interface, p.direction, p.pid) for p in plan.points] == [
        ("a1-eth0", "out", 1001), ("tw1-eth1", "in", None), ("tw1-eth11", "out", None),
        ("twd1a", "in", None), ("twd1b", "out", None), ("tw2-eth11", "in", None),
        ("tw2-eth2", "out", None), ("b2-eth0", "in", 2002)]
    assert [(h.kind, h.start, h.end) for h in plan.hops] == [
        ("nic", None, 0), ("link", 0, 1), ("switch", 1, 2), ("veth", 2, 3), ("delay", 3, 4),
        ("veth", 4, 5), ("switch", 5, 6), ("receiver", 6, 7)]
    delay = plan.hops[4]
    assert (delay.node, delay.rate_bps, plan.interfaces(delay)) == ("twd1", 100e6, "twd1a -> twd1b")
    assert plan.interfaces(plan.hops[0]) == "a1-eth0"


def test_the_other_direction_enters_the_delay_line_at_its_other_end():
    plan = trace_plan(TWO_SITES, TWO_SITES.worker("b1"), TWO_SITES.worker("a1"))
    assert [p.interface for p in plan.points[2:6]] == ["tw2-eth11", "twd1b", "twd1a", "tw1-eth11"]
    assert [p.direction for p in plan.points[2:6]] == ["out", "in", "out", "in"]


def test_where_netem_carries_the_delay_the_switch_pass_and_the_delay_are_one_hop():
    state = twin_state([wan((1, "a"), (2, "b"), 1, 0.005, delayline=False)], ["a", "b"],
                       mechanism="netem")
    plan = trace_plan(state, state.worker("a1"), state.worker("b1"))
    assert [h.kind for h in plan.hops] == ["nic", "link", "switch+delay", "veth", "switch",
                                           "receiver"]
    assert plan.hops[2].rate_bps == 100e6 and plan.points[3].interface == "tw2-eth11"


def test_workers_of_one_site_cross_one_switch():
    plan = trace_plan(TWO_SITES, TWO_SITES.worker("a1"), TWO_SITES.worker("a2"))
    assert [h.kind for h in plan.hops] == ["nic", "link", "switch", "receiver"]
    with pytest.raises(TwinError, match="both a1"):
        trace_plan(TWO_SITES, TWO_SITES.worker("a1"), TWO_SITES.worker("a1"))


# a-c direct (6.5 ms) is longer than a-b-c (2 + 3 ms)
TRIANGLE = twin_state([wan((1, "a"), (2, "b"), 1, 0.002), wan((2, "b"), (3, "c"), 2, 0.003),
                       wan((1, "a"), (3, "c"), 3, 0.0065)], ["a", "b", "c"])


def test_the_path_is_walked_next_hop_by_next_hop_over_the_shortest_delay():
    assert forwarding_path(TRIANGLE, "a", "c") == ["a", "b", "c"]
    assert forwarding_path(TRIANGLE, "c", "a") == ["c", "b", "a"]
    plan = trace_plan(TRIANGLE, TRIANGLE.worker("a1"), TRIANGLE.worker("c1"))
    assert [h.node for h in plan.hops if h.kind == "delay"] == ["twd1", "twd2"]
    assert plan.points[5].interface == "tw2-eth11" and plan.points[6].interface == "tw2-eth12"


def test_the_baseline_forwards_on_its_spanning_tree_not_the_shortest_path():
    # a-c 4 ms direct beats a-b-c (2 + 3 ms), but the tree of the two shortest links is a-b, b-c
    state = twin_state([wan((1, "a"), (2, "b"), 1, 0.002), wan((2, "b"), (3, "c"), 2, 0.003),
                        wan((1, "a"), (3, "c"), 3, 0.004)], ["a", "b", "c"])
    assert forwarding_path(state, "a", "c") == ["a", "c"]
    assert forwarding_path(replace(state, controller="baseline"), "a", "c") == ["a", "b", "c"]


def test_no_path_is_one_line():
    state = twin_state([wan((1, "a"), (2, "b"), 1, 0.002)], ["a", "b", "c"])
    with pytest.raises(TwinError, match="^no path from a to c$"):
        forwarding_path(state, "a", "c")


def test_tcpdump_captures_one_direction_with_nanosecond_kernel_timestamps():
    argv = tcpdump_argv(CapturePoint("twd1a", "in", "twd1"), Path("/x/p.pcap"), PORT)
    assert argv[:5] == ["tcpdump", "-i", "twd1a", "-Q", "in"]
    for flag in ("-p", "--immediate-mode", "-U", "--time-stamp-precision=nano"):
        assert flag in argv
    assert argv[argv.index("-j") + 1] == "host" and argv[argv.index("-w") + 1] == "/x/p.pcap"
    assert argv[-1] == "udp and dst port 7200"


# ---- pcaps written here, read back ------------------------------------------------------

def probe_frame(seq: int, sent_ns: int, port: int = PORT, magic: int = MAGIC) -> Ether:
    payload = HEADER.pack(seq, sent_ns, magic) + b"\0" * (PAYLOAD - HEADER.size)
    return (Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:02")
            / IP(src="10.1.0.1", dst="10.2.0.2") / UDP(sport=40000, dport=port) / Raw(payload))


def write_pcap(path: Path, frames: list[tuple[int, Ether]], nano: bool = True) -> Path:
    """``frames``: (capture time in ns, frame), written in the order given."""
    w = PcapWriter(str(path), nano=nano, linktype=1, sync=True)
    w.write_header(None)  # also for a capture that saw nothing
    for ts, frame in frames:
        sub = ts % 1_000_000_000
        w.write_packet(frame, sec=ts // 1_000_000_000, usec=sub if nano else sub // 1000)
    w.close()
    return path


def test_a_nanosecond_pcap_gives_each_probe_its_exact_time_and_length(tmp_path):
    pcap = write_pcap(tmp_path / "p.pcap", [
        (T0 + 12_345, probe_frame(0, T0)),
        (T0 + 1_000_000_007, probe_frame(1, T0 + 1_000_000)),
        (T0 + 5, probe_frame(2, T0, port=PORT + 1)),  # another port
        (T0 + 6, probe_frame(3, T0, magic=0x12345678)),  # not the probe's
        (T0 + 7, Ether() / IP(dst="10.2.0.2") / TCP(dport=PORT)),  # not UDP
        (T0 + 8, Ether() / Raw(b"\x01" * 60)),  # not IP
    ])
    got = read_sightings(pcap, PORT)
    assert sorted(got.by_seq) == [0, 1]
    assert (got.by_seq[0].ts_ns, got.by_seq[0].sent_ns, got.by_seq[0].wire_bytes) == (
        T0 + 12_345, T0, FRAME)
    assert got.by_seq[1].ts_ns == T0 + 1_000_000_007


def test_a_microsecond_pcap_is_read_in_microseconds(tmp_path):
    pcap = write_pcap(tmp_path / "p.pcap", [(T0 + 12_345, probe_frame(0, T0))], nano=False)
    assert read_sightings(pcap, PORT).by_seq[0].ts_ns == (T0 + 12_345) // 1000 * 1000


def test_a_port_scapy_knows_a_protocol_for_still_yields_the_probe_header(tmp_path):
    pcap = write_pcap(tmp_path / "p.pcap", [(T0 + 1, probe_frame(9, T0, port=53))])
    assert read_sightings(pcap, 53).by_seq[9].sent_ns == T0


def test_a_second_copy_of_a_packet_counts_once(tmp_path):
    pcap = write_pcap(tmp_path / "p.pcap", [(T0 + 10, probe_frame(0, T0)),
                                            (T0 + 20, probe_frame(0, T0))])
    got = read_sightings(pcap, PORT)
    assert got.by_seq[0].ts_ns == T0 + 10 and got.duplicates == 1


# the added delay of each hop of TWO_SITES' plan (ns), and the delay line's serialization
HOP_NS = [12_000, 1_500, 65_000, 1_600, 5_000_000, 1_800, 96_000, 1_900]
SERIAL_NS = FRAME * 8e9 / 100e6  # 242 bytes at 100 Mbit/s: 19.36 us


def point_times(sent: int, extra: dict[int, int] | None = None) -> list[int]:
    """When a packet sent at ``sent`` passes each capture point; ``extra``: hop -> more ns."""
    times, t = [], sent
    for i, d in enumerate(HOP_NS):
        t += d + (round(SERIAL_NS) if i == 4 else 0) + (extra or {}).get(i, 0)
        times.append(t)
    return times


def capture_files(tmp_path: Path, plan: TracePlan, packets: dict[int, list[int | None]]
                  ) -> list[Path]:
    """One pcap per capture point: ``packets`` maps seq -> its time at each point (None: not
    seen there); each file in the order of its times, as a capture writes."""
    files = []
    for i, point in enumerate(plan.points):
        frames = sorted((t, seq) for seq, times in packets.items() if (t := times[i]) is not None)
        files.append(write_pcap(tmp_path / f"{i}-{point.interface}.pcap",
                                [(ts, probe_frame(seq, T0 + seq * 1_000_000)) for ts, seq in frames]))
    return files


def traced(tmp_path: Path, packets: dict[int, list[int | None]], sent: int, probe: dict):
    plan = trace_plan(TWO_SITES, TWO_SITES.worker("a1"), TWO_SITES.worker("b2"))
    sightings = [read_sightings(f, PORT) for f in capture_files(tmp_path, plan, packets)]
    context = {"src": "a1", "dst": "b2", "path": "a>b", "controller": "none",
               "mechanism": "delayline", "scale": "1/4000"}
    return analyse(plan, sightings, sent, probe, context)


def probe_metrics(delays_ms: list[float]) -> dict:
    return {"received": len(delays_ms), "owd_p50_ms": statistics.median(delays_ms),
            "owd_p99_ms": max(delays_ms), "reordered": 0, "delays_ms": delays_ms}


def test_known_timestamps_give_known_per_hop_delays_that_add_up(tmp_path):
    packets: dict[int, list[int | None]] = {
        seq: list(point_times(T0 + seq * 1_000_000)) for seq in range(10)}
    e2e_ms = (sum(HOP_NS) + round(SERIAL_NS)) / 1e6
    result = traced(tmp_path, packets, 10, probe_metrics([e2e_ms] * 10))
    hops = result.hops()
    assert [r.kind for r in hops] == ["nic", "link", "switch", "veth", "delay", "serialization",
                                      "veth", "switch", "receiver"]
    expected = HOP_NS[:5] + [SERIAL_NS] + HOP_NS[5:]
    expected[4] = 5_000_000 + round(SERIAL_NS) - SERIAL_NS
    for row, ns in zip(hops, expected):
        assert row.packets == 10 and row.lost == 0 and row.reordered == 0, row
        assert row.median_ms == row.mean_ms == row.p99_ms == round(ns / 1e6, 4), row
    assert (hops[4].interfaces, hops[5].interfaces) == ("twd1a -> twd1b", "twd1a -> twd1b")
    total, e2e, probe = result.total("sum"), result.total("end-to-end"), result.total("probe")
    assert total.median_ms == pytest.approx(e2e_ms, abs=1e-4)
    assert e2e.median_ms == e2e.mean_ms == probe.median_ms == round(e2e_ms, 4)
    assert result.seen == [10] * 8 and unseen_points(result) == []
    assert {(r.src, r.dst, r.path, r.mechanism, r.scale) for r in result.rows} == {
        ("a1", "b2", "a>b", "delayline", "1/4000")}


def test_percentiles_are_the_hop_delays_own(tmp_path):
    """A hop whose delay varies: 100 packets held 0..99 us extra in the switch."""
    packets: dict[int, list[int | None]] = {
        seq: list(point_times(T0 + seq * 1_000_000, {2: seq * 1000})) for seq in range(100)}
    switch = traced(tmp_path, packets, 100, probe_metrics([7.0] * 100)).hops()[2]
    assert switch.median_ms == round((65_000 + 49_000) / 1e6, 4)  # nearest rank: the 50th
    assert switch.p99_ms == round((65_000 + 98_000) / 1e6, 4)
    assert switch.mean_ms == round((65_000 + 49_500) / 1e6, 4)


def test_a_packet_lost_in_the_delay_line_counts_on_that_hop_only(tmp_path):
    packets: dict[int, list[int | None]] = {
        seq: list(point_times(T0 + seq * 1_000_000)) for seq in range(5)}
    packets[2][4:] = [None] * 4  # into the delay line (twd1a), never out of it
    packets[5] = [None] * 8  # sent, never seen: lost before the sender's NIC
    result = traced(tmp_path, packets, 6, probe_metrics([5.2] * 4))
    hops = {r.kind if r.kind not in ("veth", "switch") else f"{r.kind}{r.hop}": r
            for r in result.hops()}
    assert (hops["nic"].lost, hops["nic"].packets) == (1, 5)
    assert (hops["delay"].lost, hops["delay"].packets) == (1, 4)
    assert (hops["serialization"].packets, hops["receiver"].packets) == (4, 4)
    assert hops["switch3"].lost == 0 and hops["switch8"].lost == 0
    assert result.seen == [5, 5, 5, 5, 4, 4, 4, 4]
    assert result.total("end-to-end").packets == 4 and result.total("end-to-end").lost == 2
    assert result.total("sum").packets == 4  # seen at every point


def test_reordering_is_counted_on_the_hop_that_reorders(tmp_path):
    """Packet 1 held 1.5 ms in the delay line: it leaves after packet 2 (sent 1 ms later)."""
    packets: dict[int, list[int | None]] = {
        seq: list(point_times(T0 + seq * 1_000_000, {4: 1_500_000} if seq == 1 else None))
        for seq in range(4)}
    result = traced(tmp_path, packets, 4, probe_metrics([5.2] * 4))
    late = {r.hop: r.reordered for r in result.hops()}
    assert late[5] == 1 and sum(late.values()) == 1  # the delay hop, nowhere else
    assert result.total("end-to-end").reordered == 1
    delay = result.hops()[4]
    assert delay.p99_ms == round((5_000_000 + round(SERIAL_NS) - SERIAL_NS + 1_500_000) / 1e6, 4)


def test_reordered_counts_packets_overtaken_not_equal_times():
    assert reordered({1: 10, 2: 20, 3: 30}, {1: 100, 2: 100, 3: 100}) == 0
    assert reordered({1: 10, 2: 20, 3: 30}, {1: 300, 2: 200, 3: 100}) == 2


def test_a_point_that_saw_none_of_the_arrived_probes_is_named(tmp_path):
    packets: dict[int, list[int | None]] = {
        seq: list(point_times(T0 + seq * 1_000_000)) for seq in range(3)}
    for times in packets.values():
        times[5] = None  # never in on tw2-eth11: the frames came another way
    result = traced(tmp_path, packets, 3, probe_metrics([5.2] * 3))
    assert [p.interface for p in unseen_points(result)] == ["tw2-eth11"]


# ---- the command line ---------------------------------------------------------------------

def test_trace_takes_the_flags_a_network_engineer_expects():
    args = cli.build_parser().parse_args(
        ["trace", "beijing1", "wuhan1", "topologies/ci-2site.yaml", "--scale", "1/4000",
         "--seconds", "3", "--pps", "500", "--dscp", "46", "--csv", "t.csv"])
    assert (args.src, args.dst, args.topology, args.scale, args.seconds, args.pps, args.dscp,
            args.csv, args.controller) == ("beijing1", "wuhan1", "topologies/ci-2site.yaml",
                                           "1/4000", 3.0, 500.0, 46, "t.csv", "none")


@pytest.mark.parametrize("flags, says", [(["--dscp", "64"], "--dscp 64: a DSCP is 0-63"),
                                         (["--pps", "0"], "--seconds and --pps must be positive"),
                                         (["--port", "0"], "--port 0: a UDP port is 1-65535"),
                                         (["--scale", "1/4000"], "--scale and --controller apply"),
                                         (["topologies/ci-2site.yaml", "--size", "8973"],
                                          "--size 8973: a probe is 20 to 8972 bytes of UDP "
                                          "payload at MTU 9000"),
                                         (["topologies/ci-2site.yaml", "--size", "19"],
                                          "--size 19: a probe is 20 to")])
def test_bad_trace_flags_are_one_line_before_anything_starts(flags, says, capsys, monkeypatch):
    from twin.emulation import runtime

    def no_bring_up(*args, **kwargs):
        raise AssertionError("a refused flag brought a twin up")

    monkeypatch.setattr(runtime, "up", no_bring_up)
    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    assert cli.main(["trace", "a1", "b1"] + flags) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"twin: {says}") and err.count("\n") == 1


def test_an_interrupt_while_processes_start_waits_for_the_block_to_end():
    import os
    import signal

    from twin.measure.trace import interrupts_deferred
    done = []
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the rest of the block ran")
    assert done == ["the rest of the block ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_the_captures_scratch_folder_is_gone_after_the_trace_even_when_it_fails(tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv("TWIN_RUN_DIR", str(tmp_path))
    with pytest.raises(TwinError):
        with pcap_folder(None) as folder:
            (folder / "00-a1-eth0-out.pcap").write_bytes(b"")
            assert folder.parent == tmp_path / "traces"
            raise TwinError("tcpdump exited")
    assert not folder.exists() and list((tmp_path / "traces").iterdir()) == []
    kept = tmp_path / "kept"
    with pcap_folder(str(kept)) as folder:
        (folder / "00-a1-eth0-out.pcap").write_bytes(b"")
    assert [p.name for p in kept.iterdir()] == ["00-a1-eth0-out.pcap"]  # --pcaps keeps them
