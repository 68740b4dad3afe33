"""What this machine can deliver through the twin's switch with nothing shaping it: one TCP
flow's goodput, and the one-way delay variation of the probe.

Calibration compares a path's TCP goodput with its emulated rate; when the rate is more than
the machine can move at all (kernel TCP over veths through the OVS datapath, on these cores),
a low ratio says nothing about the twin's links, and a rate above every check says nothing
either. The ceiling is found by trying: two scratch namespaces joined by one fresh OVS bridge
of the twin's datapath (userspace here), the twin's MTU, offloads off as on the twin's ports,
no qdisc, and iperf3 between them for a few seconds, while the twin itself stays up and idle.

The same holds for delay variation: a path's PDV (p99.9 less the minimum of one-way delays) is
the machine's as much as the delay stage's. The rig's own PDV, the calibration probe sent through
one switch pass with no delay stage, is the least any path of the twin can show (each has two
passes or more and a delay stage besides); a PDV target below it cannot be tested here.

The rig takes the twin's marks (namespaces ``twin-*``, interfaces and bridge with its prefix, the
bridge's external-id), so ``twin clean`` removes whatever a killed run leaves of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

from traffic.probe import wait_listening
from twin.drive.crosstraffic import client_argv, parse_iperf3
from twin.emulation.links import OFFLOADS
from twin.host import rundirs
from twin.host.processes import WORKLOAD_ENV, run_argv
from twin.units import tcp_payload_share

RIG_BRIDGE_NUMBER = 999  # tw999: past any site switch's number (switches count from 1 per site)
RIG_ADDRESSES = ("10.254.99.1", "10.254.99.2")
RIG_PORT = 5398
RIG_PROBE_PORT = 5399
CEILING_SECONDS = 3
CEILING_OMIT_S = 1


@dataclass(frozen=True)
class Ceiling:
    """One TCP flow's goodput through the rig, and the line rate that goodput amounts to; the
    probe's one-way PDV through it (ms, None where not measured)."""

    goodput_bps: float
    mtu: int
    datapath: str
    pdv_ms: Optional[float] = None

    @property
    def wire_bps(self) -> float:
        """The goodput as Ethernet frames: comparable with an emulated line rate."""
        return self.goodput_bps / tcp_payload_share(self.mtu)


def bridge_datapath_type(datapath: str) -> str:
    """OVS's datapath_type for the twin's datapath name ('user' -> netdev, 'kernel' -> system)."""
    return "netdev" if datapath == "user" else "system"


def rig_commands(tag: str, mtu: int, datapath: str) -> tuple[list[list[str]], list[str], str]:
    """(commands that build the rig, its two namespaces, its bridge) for ``tag``."""
    p = rundirs.prefix()
    bridge = f"{p}{RIG_BRIDGE_NUMBER}"
    namespaces = [f"twin-ceil{i}-{tag}" for i in (1, 2)]
    cmds = [["ovs-vsctl", "--timeout=10", "add-br", bridge, "--", "set", "bridge",
             bridge, f"datapath_type={bridge_datapath_type(datapath)}", "fail_mode=standalone",
             f"external-ids:{rundirs.LABEL}=ceiling-{tag}"]]
    for i, (ns, ip) in enumerate(zip(namespaces, RIG_ADDRESSES), 1):
        port = f"{bridge}-eth{i}"
        cmds += [["ip", "netns", "add", ns],
                 ["ip", "link", "add", "name", port, "mtu", str(mtu), "type", "veth", "peer",
                  "name", "c0", "mtu", str(mtu), "netns", ns],
                 ["ethtool", "-K", port] + OFFLOADS,
                 ["ip", "netns", "exec", ns, "ethtool", "-K", "c0"] + OFFLOADS,
                 ["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "c0"],
                 ["ip", "-n", ns, "link", "set", "c0", "up"],
                 ["ip", "-n", ns, "link", "set", "lo", "up"],
                 ["ip", "link", "set", port, "up"],
                 ["ovs-vsctl", "--timeout=10", "add-port", bridge, port]]
    return cmds, namespaces, bridge


@contextmanager
def rig(mtu: int, datapath: str) -> Iterator[list[str]]:
    """The two namespaces joined through a scratch bridge; everything is removed afterwards
    (and the bridge and its ports of a calibration killed mid-way before)."""
    tag = uuid.uuid4().hex[:6]
    cmds, namespaces, bridge = rig_commands(tag, mtu, datapath)
    remove_rig(bridge, [])
    try:
        for argv in cmds:
            run_argv(argv)
        yield namespaces
    finally:
        remove_rig(bridge, namespaces)


def remove_rig(bridge: str, namespaces: list[str]) -> None:
    run_argv(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", bridge], check=False)
    for i in (1, 2):
        run_argv(["ip", "link", "del", f"{bridge}-eth{i}"], check=False)
    for ns in namespaces:
        run_argv(["ip", "netns", "del", ns], check=False)


def in_namespace(ns: str) -> list[str]:
    """argv prefix: a host tool in a rig namespace, marked as the twin's workload for cleanup."""
    return ["ip", "netns", "exec", ns, "env", f"{WORKLOAD_ENV}=1"]


def measure_ceiling(mtu: int, datapath: str, seconds: int = CEILING_SECONDS,
                    probe: Optional[tuple[float, int]] = None) -> Ceiling:
    """One TCP flow for ``seconds`` (after a second of slow start left out) through the rig;
    with ``probe`` (packets/s, count), the one-way PDV of that many probes as well."""
    with rig(mtu, datapath) as (ns_client, ns_server):
        pdv_ms = rig_pdv_ms(ns_client, ns_server, *probe) if probe else None
        server = subprocess.Popen(in_namespace(ns_server) + ["iperf3", "-s", "-1", "-p",
                                                             str(RIG_PORT)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(ns_server)
            client = subprocess.run(in_namespace(ns_client)
                                    + client_argv(RIG_ADDRESSES[1], RIG_PORT, seconds,
                                                  omit=CEILING_OMIT_S),
                                    capture_output=True, text=True, timeout=seconds + 30)
            bps, _ = parse_iperf3(client.stdout)
        finally:
            if server.poll() is None:
                server.kill()
            server.wait()
    return Ceiling(goodput_bps=bps, mtu=mtu, datapath=datapath, pdv_ms=pdv_ms)


def rig_pdv_ms(ns_sender: str, ns_receiver: str, pps: float, count: int) -> float:
    """The probe's one-way PDV (ms) from one rig namespace to the other: traffic.probe run by
    this interpreter, as the workers run it, the receiver reading the kernel's timestamps."""
    probe = [f"PYTHONPATH={rundirs.project_root()}", sys.executable, "-m", "traffic.probe"]
    receiver = subprocess.Popen(
        in_namespace(ns_receiver) + probe + ["recv", "--port",
                                     str(RIG_PROBE_PORT), "--duration", str(count / pps + 5),
                                     "--expect", str(count)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(receiver)
        run_argv(in_namespace(ns_sender) + probe + ["send", "--dst", RIG_ADDRESSES[1], "--port",
                                                    str(RIG_PROBE_PORT), "--pps", str(pps),
                                                    "--count", str(count)])
        out, err = receiver.communicate(timeout=count / pps + 30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
    result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    if not result.get("received"):
        raise RuntimeError(f"no probe packet crossed the ceiling rig: {err.strip()[-200:]}")
    return float(result["pdv_ms"])


def _wait_listening(ns: str, timeout: float = 10.0) -> None:
    """Until the rig's iperf3 server listens (a client that finds none measures nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run_argv(in_namespace(ns) + ["ss", "-ltnH", f"sport = :{RIG_PORT}"],
                    check=False).stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"iperf3 server in {ns} did not start within {timeout:.0f} s")
