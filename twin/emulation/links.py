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
import re
from pathlib import Path
from typing import Optional, Sequence

from mininet.link import Intf, Link

from twin.emulation.delayline import (
    DelayLineSpec,
    delayline_params,
    start_delayline,
    stop_delayline,
    update_delayline,
)
from twin.emulation.tc import (
    NETWORK_CONTROL,
    Shaping,
    WorkerLinkClass,
    class_commands,
    frame_bytes,
    job_classid,
    netem_args,
    netem_leaves,
    netem_limits,
    nic_class_commands,
    shaping_commands,
)
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.processes import ns_prefix, run_argv
from twin.plan.routing import LinkClass

IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
OFFLOADS = ["tx", "off", "tso", "off", "gso", "off", "gro", "off", "rx", "off"]


def apply_classes(dev: str, rate_bps: float, classes: Sequence[LinkClass], queue_bytes: int,
                  rtt_s: float = 0.0, mtu: int = 1500, delay_stage: Optional[Shaping] = None
                  ) -> None:
    """Root-namespace switch port: replace its shaping with the reservations' classes, BFD's and
    best effort's (tc.class_commands)."""
    replace_root(dev, None, class_commands(dev, rate_bps, classes, queue_bytes, rtt_s, mtu,
                                           delay_stage), must_have=NETWORK_CONTROL)


def apply_nic_classes(dev: str, pid: Optional[int], rate_bps: float,
                      classes: Sequence[WorkerLinkClass], mtu: int = 1500,
                      toward_worker: bool = False) -> None:
    """A worker link's end (tc.nic_class_commands)."""
    replace_root(dev, pid, nic_class_commands(dev, rate_bps, classes, mtu, toward_worker),
                 must_have=job_classid(classes[0].index) if classes else "1:10")


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
    errors = [line for line in proc.stderr.splitlines()
              if line.strip() and not line.startswith("Warning")
              and "Cannot delete qdisc with handle of zero" not in line
              and "Command failed" not in line and "No such file" not in line]
    if proc.returncode != 0 and errors:
        raise TwinError(f"tc on {dev}: {errors[0]}")
    if must_have and must_have not in run_argv(ns_prefix(pid) + ["tc", "class", "show", "dev",
                                                                  dev]).stdout:
        raise TwinError(f"tc on {dev}: class {must_have} was not installed")


def intf_shaping(bw=None, delay=None, jitter=None, loss=None, max_queue_size=None,
                 queue_bytes=None, shape_delay=True, mtu=None) -> Shaping:
    """One end's egress from Mininet's TCIntf keywords (bw in Mbit/s, loss in percent,
    max_queue_size in packets of a full frame) and the twin's ``queue_bytes``; without
    ``shape_delay`` the delay stage is elsewhere (the link's delay line)."""
    from twin.units import parse_time
    return Shaping(
        rate_bps=float(bw) * 1e6 if bw else None,
        delay_s=parse_time(delay) if (delay and shape_delay) else 0.0,
        jitter_s=parse_time(jitter) if (jitter and shape_delay) else 0.0,
        loss=float(loss) / 100 if (loss and shape_delay) else 0.0,
        queue_bytes=queue_bytes or (int(max_queue_size) * frame_bytes(mtu or 1500)
                                    if max_queue_size else None),
        queue_packets=int(max_queue_size) if max_queue_size and not queue_bytes else None,
        mtu=int(mtu or 1500),
    )


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
        shaping = intf_shaping(bw, delay, jitter, loss, max_queue_size, queue_bytes, shape_delay,
                               mtu)
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
        limits = netem_limits(shown)
        for handle, parent in netem_leaves(shown):  # 10: alone, or one per detpath class
            where = ["parent", parent] if parent != "root" else ["root"]
            keep = ["limit", str(limits[handle])] if handle in limits else []
            run_argv(ns_prefix(pid) + ["tc", "qdisc", "change", "dev", dev] + where
                     + ["handle", handle] + netem_args(shaping) + keep)


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
        name = f"{rundirs.prefix()}d{n}"
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
