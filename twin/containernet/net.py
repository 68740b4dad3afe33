"""Containernet's network class on the twin: Mininet's classes in, the twin's mechanisms out.

A Containernet script names Mininet's classes (``Controller``, ``OVSSwitch``, ``TCLink``, ...);
the ones this machine cannot run as they are get the twin's counterpart with the same meaning:

- ``Controller``, ``OVSController`` (and Mininet's default): the twin's learning switch
  (:class:`LearningController`); ``RemoteController`` and other classes stay as given.
- ``OVSSwitch``/``OVSKernelSwitch``, ``OVSBridge``: the twin's labelled OVS bridge on this
  machine's datapath (``OVSBridge``: standalone).
- ``Link``, ``TCLink`` (and ``Intf``, ``TCIntf``): the twin's link, shaped by netem or the delay
  line, on both ends' egress as Mininet's TCLink; keywords it has no counterpart for are refused.
- No controller at all: the switches forward on their own (OVS standalone); with a controller,
  Mininet's secure fail mode. A ``failMode`` given to ``addSwitch`` is kept.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

from mininet.link import Intf, Link, TCIntf, TCLink
from mininet.log import output
from mininet.node import (
    Controller,
    DefaultController,
    Host,
    OVSBridge,
    OVSController,
    OVSSwitch,
)

from twin.containernet.controller import LearningController, description
from twin.containernet.node import Docker
from twin.emulation.net import Twin
from twin.errors import TwinError
from twin.host import rundirs

LISTEN_TIMEOUT_S = 10.0  # an iperf server's start

STOCK_CONTROLLERS = (Controller, OVSController, DefaultController)
CONTROLLER_BINARY_KEYWORDS = ("command", "cargs", "cdir")  # a controller program of one's own
STOCK_LINKS = (Link, TCLink)
STOCK_INTFS = (Intf, TCIntf)
STOCK_SWITCHES = (OVSSwitch, OVSBridge)  # OVSKernelSwitch is OVSSwitch

LINK_KEYWORDS = frozenset({"port1", "port2", "intfName1", "intfName2", "addr1", "addr2",
                           "params1", "params2", "fast", "intf", "cls1", "cls2"})
INTF_KEYWORDS = frozenset({"bw", "delay", "jitter", "loss", "max_queue_size", "queue_bytes", "mtu",
                           "use_htb", "mac", "ip", "ifconfig", "up", "port"})
DELAY_STAGE = ("delay", "jitter", "loss")
# TCIntf options the twin has no counterpart for, each with the one value that asks for nothing
NOT_EMULATED = {"speedup": 0, "use_hfsc": False, "use_tbf": False, "latency_ms": None,
                "enable_ecn": False, "enable_red": False, "gro": False, "txo": False, "rxo": False}


def twin_controller(cls: Any) -> Any:
    """Mininet's stock controllers (their binaries are not installed here) as the twin's."""
    if isinstance(cls, (list, tuple)):
        return [twin_controller(c) for c in cls]
    return LearningController if any(cls is c for c in STOCK_CONTROLLERS) else cls


def check_link_keywords(where: str, params: dict[str, Any], mechanism: str) -> None:
    """Refuse, in one line, what the twin's link would not do as asked."""
    ends = [("", params)] + [(f"{k}: ", params[k]) for k in ("params1", "params2") if params.get(k)]
    for prefix, given in ends:
        for key, value in given.items():
            if key in NOT_EMULATED:
                if value != NOT_EMULATED[key]:
                    raise TwinError(f"{where}: {prefix}{key}={value!r} is not emulated by the twin "
                                    "(it shapes with HTB, a FIFO queue and netem or a delay line, "
                                    "every port's offloads off)")
            elif key not in INTF_KEYWORDS and (prefix or key not in LINK_KEYWORDS):
                raise TwinError(f"{where}: unknown link keyword {prefix}{key}={value!r}")
        if prefix and mechanism == "delayline" and any(given.get(k) for k in DELAY_STAGE):
            raise TwinError(f"{where}: {prefix}delay, jitter and loss apply to the whole link on "
                            "this machine (a delay line, no netem): give them to addLink itself")
    for end in ("params1", "params2"):
        check_queue_limit(where, {**(params.get(end) or {}), **params}, mechanism)


def check_queue_limit(where: str, end: dict[str, Any], mechanism: str) -> None:
    """One end's queue limit (its keywords as Mininet merges them: the link's over the end's)
    must bound a queue: the one in front of ``bw``'s rate, or netem's, which holds the delayed
    packets too (as on Mininet). Without either there is no queue, and the limit would do
    nothing."""
    packets, size = end.get("max_queue_size"), end.get("queue_bytes")
    if packets and size:
        raise TwinError(f"{where}: max_queue_size={packets!r} and queue_bytes={size!r} both "
                        "given; give one")
    limit = "max_queue_size" if packets else "queue_bytes" if size else None
    netem_queue = mechanism == "netem" and any(end.get(k) for k in DELAY_STAGE)
    if limit and not end.get("bw") and not netem_queue:
        raise TwinError(f"{where}: {limit}={end[limit]!r} bounds no queue without bw: the queue "
                        "forms in front of the link's rate" + ("" if mechanism == "netem" else
                        " (on this machine delays are a delay line's, not netem's)"))


def listening_in(node: Any, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in ``node``'s network namespace (asked from
    outside: the node's shell may be busy running the server)."""
    out = subprocess.run(["nsenter", "--target", str(node.pid), "--net", "ss", "-Hltn",
                          f"sport = :{port}"], capture_output=True, text=True).stdout
    return bool(out.strip())


def link_delay_rate(link: Any) -> tuple[float, float]:
    """One-way delay (s) and rate (bit/s) of a twin link; 0 for what it does not shape."""
    stage = getattr(link, "_dl_shaping", None) if getattr(link, "use_delayline", False) else None
    shaping = stage or getattr(link.intf1, "shaping", None)
    if shaping is None:
        return 0.0, 0.0
    return float(shaping.delay_s), float(shaping.rate_bps or 0.0)


class Containernet(Twin):
    """``mininet.net.Containernet`` on the twin (see the module docstring for what maps to what).

    Takes Mininet's keywords (``topo``, ``controller``, ``switch``, ``host``, ``link``, ``ipBase``,
    ...) and the twin's (``run_id``, ``mechanism``, ``datapath``). ``addHost`` makes Mininet
    hosts, ``addDocker`` Containernet's Docker nodes.
    """

    def __init__(self, **params: Any) -> None:
        self.fixed_fail_modes: set[str] = set()  # switches whose failMode the script chose
        self.running = False
        switch = params.pop("switch", None)
        self.bridges_only = switch is OVSBridge
        if switch is None or any(switch is s for s in STOCK_SWITCHES):
            switch = None
        if switch is not None:
            params["switch"] = switch
        link = params.pop("link", None)
        if link is not None and not any(link is c for c in STOCK_LINKS):
            params["link"] = link
        intf = params.pop("intf", None)
        if intf is not None and not any(intf is c for c in STOCK_INTFS):
            params["intf"] = intf
        params["controller"] = twin_controller(params.get("controller", DefaultController))
        params.setdefault("host", Host)
        params.setdefault("build", True)
        super().__init__(**params)

    def addController(self, name: Any = "c0", controller: Any = None, **params: Any):
        if isinstance(name, Controller) and any(type(name) is c for c in STOCK_CONTROLLERS[:2]):
            stock, name = name, name.name  # an instance of a stock controller: ours in its place
            params = {"ip": stock.ip, "port": stock.port, **params}
            stock.terminate()
            controller = LearningController
        elif not any(k in params for k in CONTROLLER_BINARY_KEYWORDS):
            controller = twin_controller(controller)
        return super().addController(name, controller, **params)

    def addSwitch(self, name: str, cls: Any = None, **params: Any):
        if cls is OVSBridge or (cls is None and self.bridges_only):
            params["failMode"] = "standalone"
        if "failMode" in params:
            self.fixed_fail_modes.add(name)
        if any(cls is s for s in STOCK_SWITCHES):
            cls = None
        return super().addSwitch(name, cls=cls, **params)

    def addDocker(self, name: str, cls: Any = Docker, **params: Any):
        return super().addDocker(name, cls=cls, **params)

    def addLink(self, node1: Any, node2: Any, port1: Any = None, port2: Any = None,
                cls: Any = None, **params: Any):
        if cls is None or any(cls is c for c in STOCK_LINKS):
            where = f"addLink({node1}, {node2})"
            check_link_keywords(where, params, self.mechanism)
            for key in ("cls1", "cls2", "intf"):
                if any(params.get(key) is c for c in STOCK_INTFS):
                    del params[key]
            cls = None
        link = super().addLink(node1, node2, port1, port2, cls=cls, **params)
        if self.running:  # at run time: onto the running switches, shaping kept from OVS
            ports = [i for i in (link.intf1, link.intf2) if isinstance(i.node, OVSSwitch)]
            for intf in ports:
                intf.node.attach(intf)
            self.keep_shaping(ports)
        return link

    def removeLink(self, link: Any = None, node1: Any = None, node2: Any = None) -> None:
        """Containernet's call: the link given, or the first between two nodes (or names)."""
        if link is None:
            a = self[node1] if isinstance(node1, str) else node1
            b = self[node2] if isinstance(node2, str) else node2
            found = self.linksBetween(a, b)
            if not found:
                raise TwinError(f"removeLink: no link between {a} and {b}")
            link = found[0]
        if self.running:
            for intf in (link.intf1, link.intf2):
                if isinstance(intf.node, OVSSwitch):
                    intf.node.detach(intf)
        self.delLink(link)

    def removeHost(self, name: Any, **_params: Any) -> None:
        self.removeDocker(name if isinstance(name, str) else name.name)

    def start(self) -> None:
        """Fail modes (standalone without a controller), each learning controller told the
        network, Mininet's start, then until the ports are up and the switches programmed."""
        if not self.built:
            self.build()
        for sw in self.switches:
            if sw.name not in self.fixed_fail_modes:
                sw.failMode = "secure" if self.controllers else "standalone"
        learning = [c for c in self.controllers if isinstance(c, LearningController)]
        for c in learning:
            c.model_file = self.write_description(c.name)
        super().start()
        self.wait_ports_up()
        for c in learning:
            c.wait_ready()
        self.running = True

    def stop(self) -> None:
        self.running = False
        super().stop()

    def iperf(self, hosts: Any = None, l4Type: str = "TCP", udpBw: str = "10M", fmt: Any = None,
              seconds: int = 5, port: int = 5001) -> list[str]:
        """Mininet's ``iperf``: [server rate, client rate] (UDP: the target first), as strings.

        Mininet's own waits for a second server report, the first coming from its telnet probe
        of the port; iperf 2.1 writes no report for a connection that sends nothing, so it would
        wait forever. Here the server's listening socket is looked up instead of connected to,
        and the one report of the measured flow is read.
        """
        client, server = hosts or [self.hosts[0], self.hosts[-1]]
        if l4Type not in ("TCP", "UDP"):
            raise TwinError(f"iperf: l4Type={l4Type!r} is not TCP or UDP")
        output(f"*** Iperf: testing {l4Type} bandwidth between {client} and {server} \n")
        server.cmd("killall -9 iperf")
        args = f"iperf -p {port} " + ("-u " if l4Type == "UDP" else "") + (f"-f {fmt} " if fmt else "")
        server.sendCmd(args + "-s")
        if l4Type == "TCP":
            deadline = time.monotonic() + LISTEN_TIMEOUT_S
            while not listening_in(server, port):
                if time.monotonic() > deadline:
                    server.sendInt()
                    server.waitOutput()
                    raise TwinError(f"iperf: the server on {server} did not listen on port {port}")
                time.sleep(0.1)
        bw = f"-b {udpBw} " if l4Type == "UDP" else ""
        cliout = client.cmd(args + f"-t {seconds} -c {server.IP()} {bw}")
        servout = ""
        while "/sec" not in servout:
            servout += server.monitor(timeoutms=5000)
        server.sendInt()
        servout += server.waitOutput()
        result = [self._parseIperf(servout), self._parseIperf(cliout)]
        if l4Type == "UDP":
            result.insert(0, udpBw)
        output(f"*** Results: {result}\n")
        return result

    def switch_links(self) -> Iterator[dict[str, Any]]:
        """The links between two switches, as controllers.description reads them."""
        for link in self.links:
            a, b = link.intf1.node, link.intf2.node
            if a is not b and a in self.switches and b in self.switches:
                delay, rate = link_delay_rate(link)
                yield {"a": a.name, "b": b.name, "switch_a": a.name, "switch_b": b.name,
                       "port_a": a.ports[link.intf1], "port_b": b.ports[link.intf2],
                       "delay_s": delay, "emulated_bps": rate}

    def write_description(self, controller: str) -> Path:
        stem = rundirs.run_dir() / f"containernet-{self.run_id}-{controller}"
        model = description({sw.name: int(sw.dpid, 16) for sw in self.switches},
                            list(self.switch_links()), ready_file=f"{stem}-ready.json")
        path = Path(f"{stem}-model.json")
        path.write_text(json.dumps(model, indent=1))
        return path

    def __enter__(self) -> "Containernet":
        return self
