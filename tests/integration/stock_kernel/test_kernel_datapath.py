"""ci-2site on the OVS kernel datapath: the bridges are on the system datapath, and the frames
of cross-site traffic are switched there (their flows show in the kernel's flow table)."""

from __future__ import annotations

import re

from tests.integration.machine import ns_run
from tests.integration.stock_kernel.conftest import run


def test_every_twin_bridge_is_on_the_system_datapath(ci2site):
    _, state = ci2site
    for bridge in state.switches:
        kind = run(["ovs-vsctl", "get", "bridge", bridge, "datapath_type"]).strip().strip('"')
        assert kind in ("", "system"), f"{bridge}: datapath_type {kind!r}"
    shown = run(["ovs-dpctl", "show"])
    assert "system@ovs-system" in shown
    ports = set(re.findall(r"port \d+: (\S+)", shown))
    for w in state.wan:
        assert {w.intf_a, w.intf_b} <= ports, shown
    for w in state.workers:
        assert w.port_intf in ports, shown


def used_within(flow: str, seconds: float) -> bool:
    """Whether a dumped datapath flow was last used at most ``seconds`` ago ('used:0.102s')."""
    m = re.search(r"used:([\d.]+)s", flow)
    return bool(m) and float(m.group(1)) <= seconds


def test_cross_site_frames_are_switched_by_kernel_flows(ci2site):
    _, state = ci2site
    src, dst = state.worker("beijing1"), state.worker("wuhan2")
    # flows idle out of the kernel's table after ~10 s: dump them while the pings still run
    out = ns_run(src.pid, ["ping", "-n", "-c", "30", "-i", "0.1", dst.ip])
    assert " 0% packet loss" in out.stdout, out.stdout
    ns_run(src.pid, ["ping", "-n", "-c", "3", "-i", "0.2", dst.ip])
    flows = run(["ovs-appctl", "dpctl/dump-flows", "system@ovs-system"])
    # the static flows forward on the destination MAC, so that is what the kernel's flows match;
    # those the pings used, within the last two seconds (other workers' earlier traffic
    # to the same MAC, such as delay compensation's, can leave idle flows of its own)
    ours = [f for f in flows.splitlines() if f"eth(dst={dst.mac})" in f and used_within(f, 2.0)]
    assert ours, f"no kernel flow towards {dst.mac} used by the pings:\n{flows}"
    # one flow per hop: from the source's port on its site switch, and from the WAN on the far one
    assert len({re.search(r"in_port\((\d+)\)", f).group(1) for f in ours}) >= 2, ours
    assert all(int(re.search(r"packets:(\d+)", f).group(1)) >= 30 for f in ours), ours
    assert any(f"eth(dst={src.mac})" in f for f in flows.splitlines())  # and the replies
    # ovs-dpctl reads the same kernel table
    assert f"eth(dst={dst.mac})" in run(["ovs-dpctl", "dump-flows"])
