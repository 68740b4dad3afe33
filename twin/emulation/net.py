"""The Twin network: Mininet's Net with Docker workers, OVS switches and long-haul links.

``Twin`` is a Mininet subclass, so the Mininet/Containernet vocabulary works unchanged:
``addDocker``, ``addSwitch``, ``addLink(..., bw=, delay=, loss=)``, ``start``, ``stop``, ``CLI``.
What it adds is the choice of mechanisms for this machine (netem or delay line, kernel or
userspace OVS) and labels on everything it creates so ``twin clean`` always finds it.
"""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any, Optional

from mininet.net import Mininet
from mininet.node import OVSSwitch

from twin.emulation.links import LongHaulLink, ShapedIntf, reapply
from twin.emulation.nodes import DockerHost
from twin.host import capabilities, rundirs
from twin.host.processes import run_argv


class TwinSwitch(OVSSwitch):
    """An OVS bridge marked with the run id (its ports are prepared by ShapedIntf)."""

    def __init__(self, name, run_id: str = "api", **params):
        self.run_id = run_id
        params.setdefault("protocols", "OpenFlow13")
        params.setdefault("batch", True)  # one ovs-vsctl call for all bridges
        super().__init__(name, **params)

    def bridgeOpts(self):
        return super().bridgeOpts() + f" external-ids:{rundirs.LABEL}={self.run_id}"


def bound(cls: Any, base: type, **params: Any) -> Any:
    """``cls`` with the twin's parameters bound if it is one of the twin's classes, else as given."""
    return partial(cls, **params) if isinstance(cls, type) and issubclass(cls, base) else cls


class Twin(Mininet):
    """A live emulated fabric. Use as a context manager to guarantee teardown.

    ``host``, ``switch``, ``link`` and ``intf`` default to the twin's classes (Docker workers,
    labelled OVS bridges on this machine's datapath, links shaped by this machine's mechanism);
    other classes given are used as they are.
    """

    def __init__(self, run_id: Optional[str] = None, mechanism: Optional[str] = None,
                 datapath: Optional[str] = None, fail_mode: str = "secure", **kwargs):
        self.run_id = run_id or f"api-{uuid.uuid4().hex[:8]}"
        self.mechanism = mechanism or capabilities.link_mechanism()
        self.datapath = datapath or capabilities.ovs_datapath()
        kwargs.setdefault("controller", None)
        kwargs.setdefault("build", False)
        super().__init__(
            switch=bound(kwargs.pop("switch", TwinSwitch), TwinSwitch, run_id=self.run_id,
                         datapath=self.datapath, failMode=fail_mode),
            host=bound(kwargs.pop("host", DockerHost), DockerHost, run_id=self.run_id),
            link=bound(kwargs.pop("link", LongHaulLink), LongHaulLink, mechanism=self.mechanism),
            intf=kwargs.pop("intf", ShapedIntf), **kwargs)

    def addHost(self, name: str, cls=None, **params):
        if isinstance(cls, type) and issubclass(cls, DockerHost):
            params.setdefault("run_id", self.run_id)
        return super().addHost(name, cls=cls, **params)

    # Containernet's API
    def addDocker(self, name: str, cls=DockerHost, **params):
        return self.addHost(name, cls=cls, **params)

    def removeDocker(self, name: str) -> None:
        node = self.nameToNode[name]
        for link in [k for k in self.links if node in (k.intf1.node, k.intf2.node)]:
            self.delLink(link)
        node.terminate()
        self.hosts.remove(node)
        del self.nameToNode[name]

    def start(self) -> None:
        """Start, then keep OVS's hands off the ports' qdiscs and put the shaping back."""
        super().start()
        self.keep_shaping([i for sw in self.switches for i in sw.intfList() if i.name != "lo"])

    @staticmethod
    def keep_shaping(ports: list) -> None:
        """OVS replaces a port's root qdisc when it adds the port (QoS type 'linux-default'), which
        silently removes the link's HTB and queue. Giving the ports QoS type 'linux-noop' tells
        OVS never to touch their tc again; the shaping done at link creation is then re-applied.
        """
        if ports:
            argv = ["ovs-vsctl", "--timeout=30", "--", "--id=@noop", "create", "qos", "type=linux-noop"]
            for intf in ports:
                argv += ["--", "set", "port", intf.name, "qos=@noop"]
            run_argv(argv)
        for intf in ports:
            if getattr(intf, "shaping", None) is not None:
                reapply(intf)

    def wait_ports_up(self, timeout: float = 10.0) -> None:
        """Userspace OVS picks up new ports asynchronously; wait until each is carrier-up."""
        deadline = time.monotonic() + timeout
        for sw in self.switches:
            for intf in sw.intfList():
                while intf.name != "lo" and time.monotonic() < deadline:
                    if "UP" in intf.cmd("ip", "-br", "link", "show", intf.name):
                        break
                    time.sleep(0.05)

    def __enter__(self) -> "Twin":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
