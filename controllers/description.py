"""The fabric as the twin describes it to its controller (a JSON file written at bring-up)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from twin.plan.graph import fabric_graph
from twin.plan.routing import Reservation

MODEL_ENV = "TWIN_CONTROLLER_MODEL"


@dataclass
class FabricModel:
    switches: dict[str, dict]  # name -> {"dpid": int, "site": str}
    workers: list[dict]  # name, site, ip, mac, switch, port
    wan: list[dict]  # a, b, switch_a, switch_b, port_a, port_b, delay_s, emulated_bps
    reservations: list[Reservation] = field(default_factory=list)
    ready_file: str = ""

    def switch_by_dpid(self, dpid: int) -> tuple[str, dict] | None:
        for name, sw in self.switches.items():
            if sw["dpid"] == dpid:
                return name, sw
        return None

    def wan_port(self, site: str, neighbour: str) -> int:
        g = fabric_graph(self.wan)
        return g[site][neighbour]["ports"][site][1]

    def host_ports(self, switch: str) -> list[int]:
        return [w["port"] for w in self.workers if w["switch"] == switch]


def load(path: str | None = None) -> FabricModel:
    data = json.loads(Path(path or os.environ[MODEL_ENV]).read_text())
    data["reservations"] = [Reservation(**r) for r in data.get("reservations", [])]
    return FabricModel(**data)


def mark_ready(model: FabricModel, detail: dict) -> None:
    if model.ready_file:
        tmp = Path(model.ready_file + ".tmp")
        tmp.write_text(json.dumps(dict(detail, time=time.time())))
        os.replace(tmp, model.ready_file)
