"""The state of one running twin: its workers, switches and long-haul links, as saved to the
state file so that detached commands (exec, link, inspect, down) find what bring-up made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from twin.emulation.delayline import DelayLineSpec
from twin.emulation.tc import Compensation, Shaping
from twin.errors import TwinError
from twin.plan.dilation import Dilation


@dataclass
class WorkerInfo:
    name: str
    site: str
    index: int
    ip: str
    mac: str
    switch: str
    port: int
    container: str = ""
    pid: int = 0
    port_intf: str = ""  # the switch's interface towards this worker

    @property
    def fabric_intf(self) -> str:
        """The worker's own interface on the fabric, inside its container (Mininet's name)."""
        return f"{self.name}-eth0"


@dataclass
class WanInfo:
    a: str
    b: str
    switch_a: str
    switch_b: str
    port_a: int
    port_b: int
    intf_a: str
    intf_b: str
    km: float
    delay_s: float
    jitter_s: float
    loss: float
    rate_bps: float
    emulated_bps: float
    queue_bytes: int
    delayline: Optional[DelayLineSpec] = None  # where no netem carries the delay
    reserved_bps: float = 0.0
    class_dscps: list[int] = field(default_factory=list)  # detpath's classes on both ports
    site_a_index: int = 0  # the ends' site indices, as in the workers' MACs (plan.addressing)
    site_b_index: int = 0
    # delay compensation (twin.emulation.compensation), host time: the one-hop round trip with
    # the delay stages at zero, and what the delay stage takes off each frame, one way
    floor_rtt_s: Optional[float] = None
    comp_first_s: float = 0.0
    comp_transit_ab_s: float = 0.0
    comp_transit_ba_s: float = 0.0
    measured_rtt_s: Optional[float] = None  # the one-hop round trip once compensated (host time)
    cut_mid_span: bool = False  # its delay stage drops every frame, the ports up (set_link_span)

    def compensation(self) -> Compensation:
        return Compensation(self.comp_first_s, self.comp_transit_ab_s, self.comp_transit_ba_s,
                            self.site_a_index, self.site_b_index)

    def shaping(self, mtu: int, dilation: Dilation) -> Shaping:
        """What the link's delay stage does now, as the host plays it: the emulated rate, delay,
        jitter and loss (dilated), the traffic classes it serializes apart, the floor it takes
        off."""
        return Shaping(rate_bps=dilation.host_bps(self.emulated_bps),
                       delay_s=dilation.host_s(self.delay_s), jitter_s=dilation.host_s(self.jitter_s),
                       loss=self.loss, mtu=mtu, class_dscps=tuple(self.class_dscps),
                       compensation=self.compensation(), down=self.cut_mid_span)

    def floor_exceeds_delay(self, dilation: Dilation) -> bool:
        """The host's floor is longer than the fiber: the link cannot be as short as configured."""
        return self.comp_first_s > dilation.host_s(self.delay_s)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WanInfo":
        """The inverse of ``dataclasses.asdict``: how the state file holds it."""
        line = d.get("delayline")
        return cls(**{**d, "delayline": DelayLineSpec.from_dict(line) if line else None})


@dataclass
class TwinState:
    """What a running twin is made of; saved to the state file for detach/exec/link/down."""

    run_id: str
    topology: str
    topology_file: str
    mechanism: str
    datapath: str
    controller: str
    scale: str
    owner_pid: int
    started: float
    controller_pid: int = 0
    mtu: int = 1500
    dilation: float = 1.0  # time dilation K (twin.plan.dilation)
    congestion_control: str = ""  # the workers' TCP congestion control
    compensated: bool = False  # the delay stages take the host's floor out (compensation)
    lan_floor_rtt_s: dict[str, float] = field(default_factory=dict)  # site -> worker-to-worker, host
    site_delay_s: dict[str, float] = field(default_factory=dict)  # site -> worker-link delay, fabric
    site_bps: dict[str, float] = field(default_factory=dict)  # site -> worker-link rate, emulated
    log_dir: str = ""  # the run's folder: controller and delay-line logs (paths.runs_dir)
    switches: dict[str, str] = field(default_factory=dict)  # switch name -> site
    workers: list[WorkerInfo] = field(default_factory=list)
    wan: list[WanInfo] = field(default_factory=list)

    def worker(self, name: str) -> WorkerInfo:
        for w in self.workers:
            if w.name == name:
                return w
        raise TwinError(f"no worker named {name!r}; workers are: "
                        + ", ".join(w.name for w in self.workers))

    @property
    def time(self) -> Dilation:
        """Fabric time <-> host time for this run."""
        return Dilation(self.dilation)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (nested dataclasses become dicts); from_dict reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TwinState":
        return cls(**{**d, "workers": [WorkerInfo(**w) for w in d.get("workers", [])],
                      "wan": [WanInfo.from_dict(w) for w in d.get("wan", [])]})

