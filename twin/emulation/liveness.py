"""BFD on the WAN ports: how detpath's switches learn that a long-haul link carries nothing.

A switch port stays up when a fiber is cut mid-span (between two amplifiers, far from either
end): the optics at the ends keep their carrier towards the local equipment, nothing arrives.
Fast-failover groups watch a port's liveness, and OVS derives it from BFD where BFD runs on
the port (RFC 5880/5881, UDP 3784): a session that misses BFD_DETECT_MULT of the peer's control
packets goes down, the port stops being live, the group moves to its next bucket. So the gap a
mid-span cut leaves is the detection time (about BFD_DETECT_MULT x BFD_INTERVAL_MS, plus the
link's one-way delay for the last packet in flight) and the switch-over; a cut that takes the
port down is seen at once. BFD's packets have their own strict-priority class on each WAN egress
(tc.class_commands), so a flooded link is not mistaken for a cut one.
"""

from __future__ import annotations

import time

from twin.emulation.state import TwinState
from twin.errors import TwinError
from twin.host.processes import run_argv

BFD_INTERVAL_MS = 20  # transmit and receive interval the switches ask for
BFD_DETECT_MULT = 3  # fixed by OVS: a session goes down after three intervals without a packet
BFD_UP_TIMEOUT_S = 15.0  # a session starts at 1 packet/s until it is up (RFC 5880 6.8.3)


def wan_ports(state: TwinState) -> list[str]:
    return [intf for w in state.wan for intf in (w.intf_a, w.intf_b)]


def bfd_interval_ms(state: TwinState) -> int:
    """BFD's interval as the switches must run it: a timer like any other, so K times the
    fabric's under time dilation (a cut is then detected in BFD_DETECT_MULT x BFD_INTERVAL_MS of
    fabric time at every K, instead of K times sooner)."""
    return round(state.time.host_s(BFD_INTERVAL_MS / 1e3) * 1e3)


def enable_bfd(state: TwinState) -> None:
    """BFD on both switch ports of every WAN link."""
    interval = bfd_interval_ms(state)
    for intf in wan_ports(state):
        run_argv(["ovs-vsctl", "--timeout=10", "set", "interface", intf, "bfd:enable=true",
                  f"bfd:min_tx={interval}", f"bfd:min_rx={interval}"])


def bfd_state(intf: str) -> str:
    """The port's BFD session state as OVS reports it (up, down, init, admin_down; '' if none)."""
    out = run_argv(["ovs-vsctl", "--timeout=10", "get", "interface", intf, "bfd_status:state"],
                   check=False).stdout
    return out.strip().strip('"')


def wait_bfd_up(ports: list[str], timeout_s: float = BFD_UP_TIMEOUT_S) -> None:
    """Until the BFD session of every port that runs one is up: such a port is not live before,
    and fast failover would send everything the long way round (after bring-up, and after a
    cut link is restored)."""
    deadline = time.monotonic() + timeout_s
    pending = [intf for intf in ports if bfd_state(intf)]
    while pending:
        pending = [intf for intf in pending if bfd_state(intf) != "up"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TwinError(f"BFD did not come up within {timeout_s:g} s on WAN port(s) "
                            + ", ".join(f"{i} ({bfd_state(i)})" for i in pending))
        time.sleep(0.1)
