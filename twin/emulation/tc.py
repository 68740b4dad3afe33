"""tc command lines, pure: what every port's egress gets (HTB rate, byte queues, netem, detpath's
classes). Built apart from the code that runs them (twin.emulation.links), so they can be read,
compared and unit-tested without a kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

MTU_FRAME = 1514  # a standard Ethernet frame (1500 MTU + header)


ETH_HEADER = 14


def frame_bytes(mtu: int) -> int:
    return mtu + ETH_HEADER


@dataclass
class Shaping:
    """What one direction of a link does to packets, in emulated units."""

    rate_bps: Optional[float] = None
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    queue_bytes: Optional[int] = None
    mtu: int = 1500
    # DSCPs with an HTB class of their own on this link (detpath): the delay line serializes each
    # class apart, as netem does with one leaf per class (see twin/delayline.c)
    class_dscps: tuple[int, ...] = ()

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
        limit = max(1000, (shaping.queue_bytes or 0) // frame_bytes(shaping.mtu) + 1)
        cmds.append(leaf + netem_args(shaping) + ["limit", str(limit)])
    elif shaping.rate_bps:
        queue = shaping.queue_bytes or 64 * frame_bytes(shaping.mtu)
        cmds.append(leaf + ["bfifo", "limit", str(queue)])
    return cmds


def netem_args(shaping: Shaping) -> list[str]:
    """netem's delay stage; with a rate it also serializes each frame (HTB in front releases its
    token bucket at once after an idle moment, a real line does not)."""
    args = ["netem", "delay", f"{shaping.delay_s * 1e6:.0f}us"]
    if shaping.jitter_s:
        args += [f"{shaping.jitter_s * 1e6:.0f}us", "distribution", "normal"]
    args += ["loss", f"{shaping.loss * 100:.6g}%"]
    return args + (["rate", f"{int(shaping.rate_bps)}bit"] if shaping.rate_bps else [])


def leaf_qdisc(dev: str, classid: str, handle: str) -> list[str]:
    """The head of the command that puts a queue under an HTB class (its kind and limit follow)."""
    return ["tc", "qdisc", "replace", "dev", dev, "parent", classid, "handle", handle]


def htb_child(dev: str, classid: str, rate: int, ceil: int, prio: str, burst: str) -> list[str]:
    """A class under 1:1 with a guaranteed rate, borrowing up to ceil, served in prio order."""
    return ["tc", "class", "replace", "dev", dev, "parent", "1:1", "classid", classid, "htb",
            "rate", f"{rate}bit", "ceil", f"{ceil}bit", "prio", prio, "burst", burst,
            "cburst", burst]


def class_commands(dev: str, rate_bps: float, reserved_bps: float, queue_bytes: int,
                   dscp: int = 34, rtt_s: float = 0.0, probe_dscp: int = 46,
                   mtu: int = 1500, delay_stage: Optional[Shaping] = None) -> list[list[str]]:
    """Deterministic-service isolation on a WAN egress, three HTB classes under the line rate:

    1:30 probes (probe_dscp, EF): strict priority, small rate, a queue of a few packets;
    1:20 the reserved job (dscp): its guaranteed rate, next priority, one BDP of queue;
    1:10 best effort: the rest. Every class may borrow up to the line rate when others are idle.
    The switch marks DSCP in OpenFlow, tc classifies: works on any OVS datapath.
    ``delay_stage``: where netem carries the link's delay, every class's queue is a netem (the
    tree is replaced whole, and a bfifo leaf would silently drop the fiber's delay).
    """
    rate = int(rate_bps)
    probe = int(max(1e6, 0.02 * reserved_bps))
    res = int(max(8000, min(reserved_bps, rate_bps) - probe))
    be = max(int(rate_bps - reserved_bps), 8000)
    frame = frame_bytes(mtu)
    burst = str(htb_burst_bytes(rate_bps, frame))
    reserved_queue = max(64 * frame, int(reserved_bps / 8 * max(rtt_s, 0.002)))

    def cls(classid: str, r: int, prio: str) -> list[str]:
        return htb_child(dev, classid, r, rate, prio, burst)

    def leaf(classid: str, handle: str, limit: int) -> list[str]:
        if delay_stage:
            return leaf_qdisc(dev, classid, handle) + netem_args(delay_stage) + [
                "limit", str(max(1000, limit // frame + 1))]
        return leaf_qdisc(dev, classid, handle) + ["bfifo", "limit", str(limit)]

    def match(d: int, flowid: str, pref: str) -> list[str]:
        return ["tc", "filter", "replace", "dev", dev, "parent", "1:", "protocol", "ip", "prio",
                pref, "u32", "match", "ip", "dsfield", hex(d << 2), "0xfc", "flowid", flowid]

    return htb_root(dev, rate, burst) + [
        cls("1:30", probe, "0"), cls("1:20", res, "1"), cls("1:10", be, "2"),
        leaf("1:30", "30:", 32 * frame), leaf("1:20", "20:", reserved_queue),
        leaf("1:10", "10:", queue_bytes),
        match(probe_dscp, "1:30", "1"), match(dscp, "1:20", "2"),
    ]


def class_rate_commands(dev: str, rate_bps: float, reserved_bps: float, mtu: int = 1500
                        ) -> list[list[str]]:
    """Only the ``tc class`` lines of class_commands: a new line rate for a live class tree
    ('class replace' changes a class in place; its queue and filters stay)."""
    return [c for c in class_commands(dev, rate_bps, reserved_bps, 0, mtu=mtu) if c[1] == "class"]


def nic_class_commands(dev: str, rate_bps: float, udp_ports: list[int], mtu: int = 1500,
                       reserved_bps: float = 0.0,
                       tcp_ports: Sequence[int] = (), dscp: Optional[int] = None,
                       probe_dscp: Optional[int] = None) -> list[list[str]]:
    """A worker's link (both ends: the NIC and the switch port facing it) with the reservation's
    classes, so the job keeps its rate on the first and the last hop too, not only on the WAN.

    Real GPU hosts map traffic classes to NIC priority queues; with one FIFO a probe waits
    behind every frame the job has queued on the same NIC (up to 64 jumbo frames: 46 ms at
    100 Mbit/s), which is the host's doing, not the network's. And a switch port facing a
    worker is an egress like any other: another worker of the site flooding the same destination
    took the job's TCP down to 4.5% of its rate there (measured on ci-2site, 1/4000), with the
    WAN's classes intact. 1:30 takes the probes (the reservations' UDP ports, or probe_dscp),
    strict priority; 1:20 the job (its TCP ports, or dscp: the switch marks frames from its own
    workers, frames from the WAN arrive marked) at ``reserved_bps``; 1:10 the rest. All borrow
    up to the line rate.
    """
    rate = int(rate_bps)
    frame = frame_bytes(mtu)
    burst = str(htb_burst_bytes(rate_bps, frame))
    probe = int(min(max(1e6, 0.02 * rate_bps), rate_bps / 2))
    job = int(min(reserved_bps, rate_bps - probe)) if reserved_bps > 0 else 0

    def cls(classid: str, r: int, prio: str) -> list[str]:
        return htb_child(dev, classid, r, rate, prio, burst) + ["quantum", str(frame)]

    def leaf(classid: str, handle: str, limit: int) -> list[str]:
        return leaf_qdisc(dev, classid, handle) + ["bfifo", "limit", str(limit)]

    def u32(pref: str, flowid: str, *match: str) -> list[str]:
        return ["tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", pref,
                "u32", *match, "flowid", flowid]

    cmds = htb_root(dev, rate, burst) + [cls("1:30", probe, "0")]
    if job:
        cmds.append(cls("1:20", job, "1"))
    cmds += [cls("1:10", max(rate - probe - job, 8000), "2" if job else "1"),
             leaf("1:30", "30:", 32 * frame)]
    if job:
        cmds.append(leaf("1:20", "20:", 64 * frame))
    cmds.append(leaf("1:10", "10:", 64 * frame))

    def classify(pref: str, flowid: str, proto: int, ports: Sequence[int],
                 mark: Optional[int]) -> None:
        """Either port of the transport header, or the DSCP a switch has set."""
        for port in ports:
            for direction in ("dport", "sport"):
                cmds.append(u32(pref, flowid, "match", "ip", "protocol", str(proto), "0xff",
                                "match", "ip", direction, str(int(port)), "0xffff"))
        if mark is not None:
            cmds.append(u32(pref, flowid, "match", "ip", "dsfield", hex(mark << 2), "0xfc"))

    classify("1", "1:30", 17, udp_ports, probe_dscp)
    if job:
        classify("2", "1:20", 6, tcp_ports, dscp)
    return cmds


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
