"""The state of one running twin: its workers, switches and long-haul links, as saved to the
state file so that detached commands (exec, link, inspect, down) find what bring-up made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from twin.emulation.delayline import DelayLineSpec
from twin.emulation.tc import Shaping
from twin.errors import TwinError


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

    def shaping(self, mtu: int = 1500) -> Shaping:
        """What the link's delay stage does now: its emulated rate, delay, jitter, loss and the
        traffic classes it serializes apart."""
        return Shaping(rate_bps=self.emulated_bps, delay_s=self.delay_s, jitter_s=self.jitter_s,
                       loss=self.loss, mtu=mtu, class_dscps=tuple(self.class_dscps))

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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (nested dataclasses become dicts); from_dict reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TwinState":
        return cls(**{**d, "workers": [WorkerInfo(**w) for w in d.get("workers", [])],
                      "wan": [WanInfo.from_dict(w) for w in d.get("wan", [])]})

