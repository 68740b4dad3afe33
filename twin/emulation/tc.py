"""tc command lines, pure: what every port's egress gets (HTB rate, byte queues, netem, detpath's
classes). Built apart from the code that runs them (twin.emulation.links), so they can be read,
compared and unit-tested without a kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from twin.plan.routing import LinkClass

MTU_FRAME = 1514  # a standard Ethernet frame (1500 MTU + header)


ETH_HEADER = 14


DEFAULT_QUEUE_FRAMES = 64  # a shaped link's queue when none is given (worker links)


def default_queue_bytes(mtu: int) -> int:
    """The queue of a shaped link given none: DEFAULT_QUEUE_FRAMES full frames."""
    return DEFAULT_QUEUE_FRAMES * frame_bytes(mtu)


def frame_bytes(mtu: int) -> int:
    return mtu + ETH_HEADER


@dataclass(frozen=True)
class Compensation:
    """The part of the host's own latency floor a long-haul link's delay stage takes out of each
    frame (host time, one way; see twin.emulation.compensation). ``first_s``: for a frame that
    enters the WAN on this link, the whole floor of a one-hop path (its sender's stack and NIC,
    two switch passes, the delay stage, its receiver); ``transit_ab_s``/``transit_ba_s``: for a
    frame arriving from another WAN link, only what one more hop adds. The delay line tells the
    two apart by the frame's source MAC, which carries the worker's site index (``site_a``,
    ``site_b``: this link's ends); netem takes ``first_s`` off every frame."""

    first_s: float = 0.0
    transit_ab_s: float = 0.0
    transit_ba_s: float = 0.0
    site_a: int = 0
    site_b: int = 0


@dataclass
class Shaping:
    """What one direction of a link does to packets, in the host's units (rates and delays as tc,
    netem and the delay line must play them: see twin.plan.dilation)."""

    rate_bps: Optional[float] = None
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    queue_bytes: Optional[int] = None
    mtu: int = 1500
    # A packet limit given as one (Mininet's max_queue_size): netem's limit as it is, as on
    # Mininet, where it counts the packets in the delay too; queue_bytes is then its bytes
    queue_packets: Optional[int] = None
    # DSCPs with an HTB class of their own on this link (detpath): the delay line serializes each
    # class apart, as netem does with one leaf per class (see twin/delayline.c)
    class_dscps: tuple[int, ...] = ()
    compensation: Compensation = Compensation()
    # the delay stage drops every frame while the switch ports stay up: a mid-span cut
    # (runtime.set_link_span); every change of the link's other settings keeps it
    down: bool = False

    def has_impairment(self) -> bool:
        return self.delay_s > 0 or self.jitter_s > 0 or self.loss > 0


def htb_burst_bytes(rate_bps: float, frame: int = MTU_FRAME) -> int:
    """HTB bucket: one frame, or 0.25 ms of traffic where that is more (at 400 Mbit/s and a
    1,500-byte MTU a one-frame bucket made HTB wake every 30 us and carry 72% of the rate).

    Not more: after an idle moment a link sends its whole bucket at once, which a real line
    never does. With 4 jumbo frames (36 KB) a 62 KB ring step on a 100 Mbit/s link finished in
    2 ms instead of 5 and measured iterations beat the model by up to 16%; with 2 frames plus no
    serialization in the delay stage, long-haul rings were still 4-10% early. Long-haul links
    add each frame's serialization in their delay stage (delay line, netem rate), so with a
    one-frame bucket a transfer arrives when the real line would deliver it."""
    return max(int(rate_bps / 8 * 0.25e-3), frame)


def htb_root(dev: str, rate: int, burst: str) -> list[list[str]]:
    """HTB root 1: (unclassified traffic to 1:10) and its line-rate class 1:1, which every
    port's classes hang under."""
    return [["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10"],
            ["tc", "class", "replace", "dev", dev, "parent", "1:", "classid", "1:1", "htb",
             "rate", f"{rate}bit", "ceil", f"{rate}bit", "burst", burst, "cburst", burst]]


def shaping_commands(dev: str, shaping: Shaping, mechanism: str) -> list[list[str]]:
    """tc argv lists that give ``dev`` its egress shaping ('replace' throughout: re-applying is safe)."""
    cmds: list[list[str]] = []
    netem = mechanism == "netem" and shaping.has_impairment()
    parent = "root"
    if shaping.rate_bps:
        rate = f"{int(shaping.rate_bps)}bit"
        frame = frame_bytes(shaping.mtu)
        burst = str(htb_burst_bytes(shaping.rate_bps, frame))
        quantum = str(min(max(frame, int(shaping.rate_bps / 8 / 1000)), 200000))
        cmds += htb_root(dev, int(shaping.rate_bps), burst) + [
            ["tc", "class", "replace", "dev", dev, "parent", "1:1", "classid", "1:10", "htb",
             "rate", rate, "ceil", rate, "burst", burst, "cburst", burst, "quantum", quantum],
        ]
        parent = "parent 1:10"
    leaf = ["tc", "qdisc", "replace", "dev", dev] + parent.split() + ["handle", "10:"]
    if netem:
        limit = shaping.queue_packets or max(1000, (shaping.queue_bytes or 0)
                                             // frame_bytes(shaping.mtu) + 1)
        cmds.append(leaf + netem_args(shaping) + ["limit", str(limit)])
    elif shaping.rate_bps:
        queue = shaping.queue_bytes or default_queue_bytes(shaping.mtu)
        cmds.append(leaf + ["bfifo", "limit", str(queue)])
    return cmds


def netem_args(shaping: Shaping) -> list[str]:
    """netem's delay stage; with a rate it also serializes each frame (HTB in front releases its
    token bucket at once after an idle moment, a real line does not). The host's own floor
    (shaping.compensation.first_s) comes off the delay, never below zero."""
    delay = max(0.0, shaping.delay_s - shaping.compensation.first_s)
    args = ["netem", "delay", f"{delay * 1e6:.0f}us"]
    if shaping.jitter_s:
        args += [f"{shaping.jitter_s * 1e6:.0f}us", "distribution", "normal"]
    args += ["loss", f"{(1.0 if shaping.down else shaping.loss) * 100:.6g}%"]
    return args + (["rate", f"{int(shaping.rate_bps)}bit"] if shaping.rate_bps else [])


def leaf_qdisc(dev: str, classid: str, handle: str) -> list[str]:
    """The head of the command that puts a queue under an HTB class (its kind and limit follow)."""
    return ["tc", "qdisc", "replace", "dev", dev, "parent", classid, "handle", handle]


def htb_child(dev: str, classid: str, rate: int, ceil: int, prio: str, burst: str) -> list[str]:
    """A class under 1:1 with a guaranteed rate, borrowing up to ceil, served in prio order."""
    return ["tc", "class", "replace", "dev", dev, "parent", "1:1", "classid", classid, "htb",
            "rate", f"{rate}bit", "ceil", f"{ceil}bit", "prio", prio, "burst", burst,
            "cburst", burst]


BFD_PORT = 3784  # BFD control packets (RFC 5881): the switches' own liveness checks on WAN links
NETWORK_CONTROL = "1:40"  # their class on a WAN egress


def job_classid(index: int) -> str:
    """The HTB class of reservation ``index``'s job, the same on every link: 1:20, 1:120, ..."""
    return f"1:{0x20 + 0x100 * index:x}"


def probe_classid(index: int) -> str:
    """The HTB class of reservation ``index``'s probes: 1:30, 1:130, ..."""
    return f"1:{0x30 + 0x100 * index:x}"


def _handle(classid: str) -> str:
    return classid.split(":")[1] + ":"


def class_dscps(classes: Sequence[LinkClass]) -> tuple[int, ...]:
    """The DSCPs a delay line serializes apart on a link with these classes (probe, job, ...)."""
    return tuple(d for c in classes for d in (c.probe_dscp, c.dscp))


def class_commands(dev: str, rate_bps: float, classes: Sequence[LinkClass], queue_bytes: int,
                   rtt_s: float = 0.0, mtu: int = 1500, delay_stage: Optional[Shaping] = None
                   ) -> list[list[str]]:
    """Deterministic-service isolation on a WAN egress: HTB classes under the line rate, two for
    every reservation whose primary or backup path crosses the link (twin.plan.routing
    link_classes), one for the switches' BFD and one for best effort:

    1:40 BFD (UDP 3784): strict priority, so a flooded link never looks cut;
    probe_classid(i) reservation i's probes (its probe_dscp): strict priority, small rate, a queue
    of a few packets;
    job_classid(i) reservation i's job (its dscp): the rate booked for it here (next to nothing on
    a link only its backup path crosses: there it still comes before best effort), next
    priority, one BDP of queue at its rate;
    1:10 best effort: what no reservation booked. Every class may borrow up to the line rate
    when others are idle. The switch marks DSCP in OpenFlow, tc classifies: works on any OVS
    datapath.
    ``delay_stage``: where netem carries the link's delay, every class's queue is a netem (the
    tree is replaced whole, and a bfifo leaf would silently drop the fiber's delay).
    """
    rate = int(rate_bps)
    frame = frame_bytes(mtu)
    burst = str(htb_burst_bytes(rate_bps, frame))
    booked = sum(c.booked_bps for c in classes)
    be = max(int(rate_bps - booked), 8000)

    def cls(classid: str, r: int, prio: str) -> list[str]:
        return htb_child(dev, classid, r, rate, prio, burst)

    def leaf(classid: str, limit: int) -> list[str]:
        if delay_stage:
            return leaf_qdisc(dev, classid, _handle(classid)) + netem_args(delay_stage) + [
                "limit", str(max(1000, limit // frame + 1))]
        return leaf_qdisc(dev, classid, _handle(classid)) + ["bfifo", "limit", str(limit)]

    def u32(pref: int, flowid: str, *match: str) -> list[str]:
        return ["tc", "filter", "replace", "dev", dev, "parent", "1:", "protocol", "ip", "prio",
                str(pref), "u32", "match", *match, "flowid", flowid]

    def dsfield(d: int) -> list[str]:
        return ["ip", "dsfield", hex(d << 2), "0xfc"]

    klasses, leaves, filters = [], [], []
    for k, c in enumerate(classes):
        probe = int(max(1e6, 0.02 * c.booked_bps))
        job = int(max(8000, min(c.booked_bps, rate_bps) - probe))
        pid, jid = probe_classid(c.index), job_classid(c.index)
        klasses += [cls(pid, probe, "0"), cls(jid, job, "1")]
        leaves += [leaf(pid, 32 * frame),
                   leaf(jid, max(64 * frame, int(c.rate_bps / 8 * max(rtt_s, 0.002))))]
        filters += [u32(2 + 2 * k, pid, *dsfield(c.probe_dscp)),
                    u32(3 + 2 * k, jid, *dsfield(c.dscp))]
    control = cls(NETWORK_CONTROL, 64000, "0")
    bfd = u32(1, NETWORK_CONTROL, "ip", "protocol", "17", "0xff", "match", "ip", "dport",
              str(BFD_PORT), "0xffff")
    return htb_root(dev, rate, burst) + [control] + klasses + [cls("1:10", be, "2")] + [
        leaf(NETWORK_CONTROL, 16 * frame)] + leaves + [leaf("1:10", queue_bytes), bfd] + filters


def class_rate_commands(dev: str, rate_bps: float, classes: Sequence[LinkClass],
                        mtu: int = 1500) -> list[list[str]]:
    """Only the ``tc class`` lines of class_commands: a new line rate for a live class tree
    ('class replace' changes a class in place; its queue and filters stay)."""
    return [c for c in class_commands(dev, rate_bps, classes, 0, mtu=mtu) if c[1] == "class"]


@dataclass(frozen=True)
class WorkerLinkClass:
    """A reservation's classes on the link of a worker at one of its two sites: its rate, its
    codepoints, its ports and the addresses of the workers at its other site (the peers)."""

    index: int  # the reservation's place in the topology: its class ids (job_classid)
    dscp: int
    probe_dscp: int
    rate_bps: float
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]  # its probes, those sent 1+1 too
    peers: tuple[str, ...]


def nic_class_commands(dev: str, rate_bps: float, classes: Sequence[WorkerLinkClass],
                       mtu: int = 1500, toward_worker: bool = False) -> list[list[str]]:
    """A worker's link (both ends: the NIC and the switch port facing it) with the classes of
    every reservation of its site, so each job keeps its rate on the first and the last hop too,
    not only on the WAN.

    Real GPU hosts map traffic classes to NIC priority queues; with one FIFO a probe waits
    behind every frame the job has queued on the same NIC (up to 64 jumbo frames: 46 ms at
    100 Mbit/s), which is the host's doing, not the network's. And a switch port facing a
    worker is an egress like any other: another worker of the site flooding the same destination
    took the job's TCP down to 4.5% of its rate there (measured on ci-2site, 1/4000), with the
    WAN's classes intact. Per reservation: its probes (its UDP ports to or from a peer) strict
    priority, its job (its TCP ports to or from a peer) at its rate; 1:10 the rest. The NIC
    (``toward_worker`` False) sees peers as destinations and classifies by addresses and ports
    alone: a DSCP there is the worker's own, and a worker marking its traffic with a
    reservation's codepoint must not get that reservation's classes. The switch port facing the
    worker sees peers as sources and also takes the reservations' codepoints, which reach it only
    as a switch set them (detpath clears every mark a worker set on what it does not classify).
    The probes share 2% of the line (at least 1 Mbit/s, at most half); when the reservations add
    up to more than the rest, each gets its share of it. All borrow up to the line rate.
    """
    rate = int(rate_bps)
    frame = frame_bytes(mtu)
    burst = str(htb_burst_bytes(rate_bps, frame))
    probes = min(max(1e6, 0.02 * rate_bps), rate_bps / 2)
    room, wanted = rate_bps - int(probes), sum(c.rate_bps for c in classes)
    jobs = [int(c.rate_bps if wanted <= room else room * c.rate_bps / wanted) for c in classes]
    peer = "src" if toward_worker else "dst"

    def cls(classid: str, r: int, prio: str) -> list[str]:
        return htb_child(dev, classid, r, rate, prio, burst) + ["quantum", str(frame)]

    def leaf(classid: str, limit: int) -> list[str]:
        return leaf_qdisc(dev, classid, _handle(classid)) + ["bfifo", "limit", str(limit)]

    def u32(pref: int, flowid: str, *match: str) -> list[str]:
        return ["tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio",
                str(pref), "u32", *match, "flowid", flowid]

    klasses: list[list[str]] = []
    leaves: list[list[str]] = []
    filters: list[list[str]] = []

    def classify(pref: int, flowid: str, proto: int, ports: Sequence[int], peers: Sequence[str],
                 mark: int) -> None:
        """Either port of the transport header to or from a peer; toward the worker, also the
        DSCP a switch set."""
        for ip in peers:
            for port in ports:
                for direction in ("dport", "sport"):
                    filters.append(u32(pref, flowid, "match", "ip", peer, f"{ip}/32", "match",
                                       "ip", "protocol", str(proto), "0xff", "match", "ip",
                                       direction, str(int(port)), "0xffff"))
        if toward_worker:
            filters.append(u32(pref, flowid, "match", "ip", "dsfield", hex(mark << 2), "0xfc"))

    for k, (c, job) in enumerate(zip(classes, jobs)):
        pid, jid = probe_classid(c.index), job_classid(c.index)
        klasses.append(cls(pid, max(int(probes / len(classes)), 8000), "0"))
        leaves.append(leaf(pid, 32 * frame))
        classify(1 + 2 * k, pid, 17, c.udp_ports, c.peers, c.probe_dscp)
        if job:
            klasses.append(cls(jid, job, "1"))
            leaves.append(leaf(jid, 64 * frame))
            classify(2 + 2 * k, jid, 6, c.tcp_ports, c.peers, c.dscp)
    rest = max(rate - int(probes) - sum(jobs), 8000)
    return (htb_root(dev, rate, burst) + klasses + [cls("1:10", rest, "2")] + leaves
            + [leaf("1:10", 64 * frame)] + filters)


def netem_leaves(tc_qdisc_show: str) -> list[tuple[str, str]]:
    """(handle, parent) of every netem qdisc in `tc qdisc show` output."""
    found = []
    for line in tc_qdisc_show.splitlines():
        m = re.match(r"qdisc netem (\S+) (root|parent (\S+))", line)
        if m:
            found.append((m.group(1), m.group(3) or "root"))
    return found


def netem_limits(tc_qdisc_show: str) -> dict[str, int]:
    """handle -> queue limit (packets) of every netem qdisc in `tc qdisc show` output. A
    `tc qdisc change ... netem` without 'limit' sets it back to tc's default of 1000 packets,
    so a live change passes each leaf's own limit again."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^qdisc netem (\S+) .*?\blimit (\d+)", tc_qdisc_show, re.M)}
