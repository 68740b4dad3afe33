"""Link shaping: rate, queue, delay, jitter and loss on every kernel.

Two mechanisms, chosen per machine (see ``twin.capabilities``):

* ``netem``: HTB class for the rate with a netem child for delay/jitter/loss, on the egress of
  both ends, like Mininet's TCLink. Used where the kernel has ``sch_netem``.
* ``delayline``: the link is two veth pairs joined by a userspace delay line process
  (``twin/delayline.c``) in the root namespace; HTB with a byte-limited FIFO shapes the rate on the
  egress of both ends. Used where netem is missing, and for jitter that must not reorder.

Queues are sized in bytes from the bandwidth-delay product unless given, because netem's and
pfifo's default of 1000 packets starves long fat links. Every port gets its segmentation and
checksum offloads switched off: OVS's userspace datapath stalls TCP otherwise.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from mininet.link import Intf, Link

from twin import delayline, paths
from twin.errors import TwinError

MTU_FRAME = 1514  # a standard Ethernet frame (1500 MTU + header)
ETH_HEADER = 14


def frame_bytes(mtu: int) -> int:
    return mtu + ETH_HEADER
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
OFFLOADS = ["tx", "off", "tso", "off", "gso", "off", "gro", "off", "rx", "off"]


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


WORKLOAD_ENV = "TWIN_WORKLOAD"


def ns_prefix(pid: Optional[int]) -> list[str]:
    """argv prefix that runs a host tool inside a process's network namespace.

    The tool gets TWIN_WORKLOAD=1 in its environment so `twin clean` can find it: an iperf3 or
    probe started this way lives outside the worker's container, and after a kill -9 of the twin
    it outlived the container, spinning on a namespace with no interfaces at 50-60% of a core
    (found because it made later measurements on the machine miss their targets).
    """
    if pid is None:
        return []
    return ["nsenter", "--target", str(pid), "--net", "env", f"{WORKLOAD_ENV}=1"]


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


def apply_classes(dev: str, rate_bps: float, reserved_bps: float, queue_bytes: int,
                  dscp: int = 34, rtt_s: float = 0.0, probe_dscp: int = 46, mtu: int = 1500,
                  delay_stage: Optional[Shaping] = None) -> None:
    """Root-namespace switch port: replace its shaping with reserved + best-effort classes."""
    replace_root(dev, None, class_commands(dev, rate_bps, reserved_bps, queue_bytes, dscp, rtt_s,
                                           probe_dscp, mtu, delay_stage), must_have="1:20")


def nic_class_commands(dev: str, rate_bps: float, udp_ports: list[int], mtu: int = 1500,
                       queue_bytes: Optional[int] = None, reserved_bps: float = 0.0,
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
        cmds.append(leaf("1:20", "20:", queue_bytes or 64 * frame))
    cmds.append(leaf("1:10", "10:", queue_bytes or 64 * frame))

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


def apply_nic_classes(dev: str, pid: Optional[int], rate_bps: float, udp_ports: list[int],
                      mtu: int = 1500, reserved_bps: float = 0.0, tcp_ports: Sequence[int] = (),
                      dscp: Optional[int] = None, probe_dscp: Optional[int] = None) -> None:
    replace_root(dev, pid, nic_class_commands(dev, rate_bps, udp_ports, mtu,
                                              reserved_bps=reserved_bps, tcp_ports=tcp_ports,
                                              dscp=dscp, probe_dscp=probe_dscp),
                 must_have="1:20" if reserved_bps > 0 else "1:30")


def run_argv(argv: list[str], check: bool = True, stdin: Optional[str] = None
             ) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, input=stdin)
    if check and proc.returncode != 0:
        raise TwinError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def prepare_port(dev: str, pid: Optional[int]) -> None:
    """Offloads off (OVS userspace needs it) and no IPv6 chatter on a twin interface.

    Inside worker namespaces IPv6 is already off (the container's default sysctl), so only
    root-namespace ports need their own switch, written directly rather than via a process.
    """
    run_argv(ns_prefix(pid) + ["ethtool", "-K", dev] + OFFLOADS, check=False)
    if pid is None:
        try:
            Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6").write_text("1")
        except OSError:
            pass


def apply_shaping(dev: str, pid: Optional[int], shaping: Shaping, mechanism: str) -> None:
    replace_root(dev, pid, shaping_commands(dev, shaping, mechanism))


def replace_root(dev: str, pid: Optional[int], cmds: list[list[str]], must_have: str = "") -> None:
    """Replace a port's whole tc tree in one ``tc -batch`` process (bring-up is I/O bound).

    Starts from an empty root: HTB cannot be 'changed' in place (-force: go on if none exists).
    ``must_have``: a class id that must exist afterwards, checked by reading the tree back.
    """
    if not IFNAME_RE.match(dev):
        raise ValueError(f"{dev!r} is not an interface name")  # a batch line must stay one line
    batch = f"qdisc del dev {dev} root\n" + "".join(" ".join(argv[1:]) + "\n" for argv in cmds)
    proc = run_argv(ns_prefix(pid) + ["tc", "-force", "-batch", "-"], stdin=batch, check=False)
    errors = [l for l in proc.stderr.splitlines()
              if l.strip() and not l.startswith("Warning")
              and "Cannot delete qdisc with handle of zero" not in l
              and "Command failed" not in l and "No such file" not in l]
    if proc.returncode != 0 and errors:
        raise TwinError(f"tc on {dev}: {errors[0]}")
    if must_have and must_have not in run_argv(ns_prefix(pid) + ["tc", "class", "show", "dev",
                                                                  dev]).stdout:
        raise TwinError(f"tc on {dev}: class {must_have} was not installed")


class ShapedIntf(Intf):
    """A Mininet interface whose egress is shaped by HTB (+ netem where chosen).

    Mininet's ``bw`` (Mbit/s), ``delay`` ('10ms'), ``jitter``, ``loss`` (percent) and
    ``max_queue_size`` (packets) keep their meaning so Mininet and Containernet scripts port.
    """

    def config(self, bw=None, delay=None, jitter=None, loss=None, max_queue_size=None,
               queue_bytes=None, mechanism="netem", shape_delay=True, mtu=None, **params):
        result = super().config(**params)
        pid = self.node.pid if self.node.inNamespace else None
        if mtu:
            run_argv(ns_prefix(pid) + ["ip", "link", "set", "dev", self.name, "mtu", str(int(mtu))])
        from twin.units import parse_time
        shaping = Shaping(
            rate_bps=float(bw) * 1e6 if bw else None,
            delay_s=parse_time(delay) if (delay and shape_delay) else 0.0,
            jitter_s=parse_time(jitter) if (jitter and shape_delay) else 0.0,
            loss=float(loss) / 100 if (loss and shape_delay) else 0.0,
            queue_bytes=queue_bytes or (max_queue_size * frame_bytes(mtu or 1500)
                                        if max_queue_size else None),
            mtu=int(mtu or 1500),
        )
        prepare_port(self.name, pid)
        self.shaping, self.mechanism = shaping, mechanism
        reapply(self)
        return result


def reapply(intf) -> None:
    """(Re)install an interface's recorded shaping."""
    s = intf.shaping
    if s.rate_bps or (intf.mechanism == "netem" and s.has_impairment()):
        pid = intf.node.pid if intf.node.inNamespace else None
        apply_shaping(intf.name, pid, s, intf.mechanism)


# ---- the userspace delay line as a Mininet link ------------------------------

_delayline_ids = itertools.count(1)
_delayline_cpu = itertools.count()


# SCHED_FIFO priority of delay lines (see delayline.c): above every time-shared process, below
# the kernel's own real-time threads (which use 50 and up).
DELAYLINE_RT_PRIORITY = 10


@dataclass
class DelayLineSpec:
    """Everything needed to find, change or stop one delay-line process."""

    name: str
    end_a: str
    end_b: str
    params_file: str
    pid: int = 0
    params: dict = field(default_factory=dict)


def delayline_params(shaping: Shaping, down: bool = False) -> dict:
    return {"delay_s": shaping.delay_s, "jitter_s": shaping.jitter_s, "loss": shaping.loss,
            "down": down, "rate_bps": shaping.rate_bps or 0,
            "class_dscps": list(shaping.class_dscps)}


def start_delayline(name: str, end_a: str, end_b: str, params: dict) -> DelayLineSpec:
    """Spawn a delay line in its own session so it outlives the process that started it."""
    run_dir = paths.run_dir()
    params_file = run_dir / "links" / f"{name}.json"
    params_file.parent.mkdir(parents=True, exist_ok=True)
    params_file.write_text(json.dumps(params))
    program = delayline.ensure_built()
    log = open(paths.log_dir() / f"delayline-{name}.log", "ab")
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[next(_delayline_cpu) % len(cpus)]  # spread the links, one CPU each (no reordering)
    proc = subprocess.Popen(
        [str(program), "--a", end_a, "--b", end_b, "--params", str(params_file), "--cpu", str(cpu),
         "--rt", str(DELAYLINE_RT_PRIORITY)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return DelayLineSpec(name, end_a, end_b, str(params_file), proc.pid, params)


def update_delayline(spec: DelayLineSpec, params: dict) -> None:
    """Write new parameters and tell the process to re-read them (no frame in flight is lost)."""
    tmp = Path(spec.params_file + ".tmp")
    tmp.write_text(json.dumps(params))
    os.replace(tmp, spec.params_file)
    spec.params = params
    os.kill(spec.pid, signal.SIGHUP)


def stop_delayline(spec: DelayLineSpec) -> None:
    try:
        os.kill(spec.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def set_long_haul_impairments(spec: Optional[DelayLineSpec], ends: list[tuple[str, Optional[int]]],
                              shaping: Shaping) -> None:
    """Change delay, jitter and loss of a live long-haul link, whichever mechanism carries it.

    One path for the Python API (LongHaulLink) and for `twin link set` on a detached twin. Only
    the delay stage changes: the rate classes (and detpath's reservation classes) stay.
    """
    if spec:
        update_delayline(spec, delayline_params(shaping))
        return
    for dev, pid in ends:
        shown = run_argv(ns_prefix(pid) + ["tc", "qdisc", "show", "dev", dev]).stdout
        for handle, parent in netem_leaves(shown):  # 10: alone, or one per detpath class
            where = ["parent", parent] if parent != "root" else ["root"]
            run_argv(ns_prefix(pid) + ["tc", "qdisc", "change", "dev", dev] + where
                     + ["handle", handle] + netem_args(shaping))


def netem_leaves(tc_qdisc_show: str) -> list[tuple[str, str]]:
    """(handle, parent) of every netem qdisc in `tc qdisc show` output."""
    found = []
    for line in tc_qdisc_show.splitlines():
        m = re.match(r"qdisc netem (\S+) (root|parent (\S+))", line)
        if m:
            found.append((m.group(1), m.group(3) or "root"))
    return found


class LongHaulLink(Link):
    """A long-haul link: direct veth + netem, or veth - delay line - veth where netem is missing.

    Takes Mininet's TCLink keywords (bw in Mbit/s, delay, jitter, loss in percent,
    max_queue_size in packets) plus ``queue_bytes`` and ``mechanism``.
    """

    def __init__(self, node1, node2, mechanism: str = "netem", **params):
        self.mechanism = mechanism
        delay, jitter, loss = params.get("delay"), params.get("jitter"), params.get("loss")
        self.use_delayline = mechanism == "delayline" and bool(delay or jitter or loss)
        self.mtu = params.get("mtu")
        self.delayline: Optional[DelayLineSpec] = None
        if self.use_delayline:
            from twin.units import parse_time
            bw = params.get("bw")  # Mbit/s: the fiber serializes at the link's rate
            self._dl_shaping = Shaping(rate_bps=float(bw) * 1e6 if bw else None,
                                       delay_s=parse_time(delay) if delay else 0.0,
                                       jitter_s=parse_time(jitter) if jitter else 0.0,
                                       loss=float(loss) / 100 if loss else 0.0)
        if not (isinstance(params.get("intf"), type) and issubclass(params["intf"], ShapedIntf)):
            params["intf"] = ShapedIntf
        params["mechanism"] = mechanism
        params["shape_delay"] = not self.use_delayline
        super().__init__(node1, node2, **params)

    def makeIntfPair(self, intfname1, intfname2, addr1=None, addr2=None,
                     node1=None, node2=None, deleteIntfs=True):
        if not self.use_delayline:
            return Link.makeIntfPair(intfname1, intfname2, addr1, addr2, node1, node2,
                                     deleteIntfs=deleteIntfs)
        n = next(_delayline_ids)
        name = f"{paths.prefix()}d{n}"
        mtu = ["mtu", str(int(self.mtu))] if self.mtu else []
        end_a, end_b = f"{name}a", f"{name}b"
        for intf, end, node, addr in ((intfname1, end_a, node1, addr1),
                                      (intfname2, end_b, node2, addr2)):
            argv = ["ip", "link", "add", "name", end] + mtu + ["type", "veth", "peer", "name", intf]
            if addr:
                argv += ["address", addr]
            argv += mtu
            if node is not None and node.inNamespace:
                argv += ["netns", str(node.pid)]
            run_argv(argv)
            run_argv(["ip", "link", "set", end, "up"])
            prepare_port(end, None)
        self.delayline = start_delayline(name, end_a, end_b, delayline_params(self._dl_shaping))
        return None

    def set_impairments(self, delay_s: float, jitter_s: float, loss: float) -> None:
        """Change delay/jitter/loss on the live link."""
        shaping = Shaping(rate_bps=self.intf1.shaping.rate_bps, delay_s=delay_s,
                          jitter_s=jitter_s, loss=loss)
        set_long_haul_impairments(
            self.delayline, [(i.name, i.node.pid if i.node.inNamespace else None)
                             for i in (self.intf1, self.intf2)], shaping)

    def delete(self):
        if self.delayline:
            stop_delayline(self.delayline)
            for end in (self.delayline.end_a, self.delayline.end_b):
                run_argv(["ip", "link", "del", end], check=False)
        super().delete()
