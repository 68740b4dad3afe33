"""Training schedules: one iteration's compute and gradient buckets, in real units, from a file,
a model description or a Chakra-style trace. Sizes are real; the topology's bandwidth scale shrinks
them for the emulation, so communication keeps its real duration and compute stays real too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from twin.errors import InputError
from twin.units import parse_size, parse_time

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


class Schedule(BaseModel):
    """One training iteration, in real (unscaled) units."""

    model_config = ConfigDict(extra="forbid")
    forward: float = Field(description="seconds")
    backward: float = Field(description="seconds")
    optimizer: float = 0.0
    buckets: list[int] = Field(min_length=1, description="gradient bucket sizes (bytes, real)")
    ready: Optional[list[float]] = Field(None, description="fraction of backward done when each bucket is ready")
    overlap: bool = True

    @field_validator("forward", "backward", "optimizer", mode="before")
    @classmethod
    def _t(cls, v):
        t = parse_time(v)
        if t < 0:
            raise ValueError("must not be negative")
        return t

    @field_validator("buckets", mode="before")
    @classmethod
    def _b(cls, v):
        if not isinstance(v, list):
            raise ValueError("must be a list of sizes")
        out = [parse_size(x) for x in v]
        if any(b <= 0 for b in out):
            raise ValueError("bucket sizes must be positive")
        return out

    @property
    def compute(self) -> float:
        return self.forward + self.backward + self.optimizer

    def scaled(self, scale: float) -> "Schedule":
        """Sizes shrink with the bandwidth so each transfer keeps its real duration."""
        return self.model_copy(update={"buckets": [max(4, int(b * scale)) for b in self.buckets]})


def from_model(params: float, dtype: str = "bf16", compute_s: float = 16.0, bucket: float = 25 * 2**20,
               model_parallel: int = 1, optimizer_s: float = 0.0, overlap: bool = True) -> Schedule:
    """DDP-like schedule: forward = 1/3 and backward = 2/3 of compute, gradient in buckets."""
    grad = params * DTYPE_BYTES[dtype] / model_parallel
    n = max(1, math.ceil(grad / bucket))
    sizes = [int(bucket)] * (n - 1) + [int(grad - bucket * (n - 1))]
    fwd = (compute_s - optimizer_s) / 3
    return Schedule(forward=fwd, backward=2 * fwd, optimizer=optimizer_s, buckets=sizes, overlap=overlap)


def from_chakra(trace: dict) -> Schedule:
    """Chakra-style JSON: nodes with type COMP / COMM_COLL, duration_micros, comm_size, data_deps.

    Compute before the first collective is the forward pass; compute after it the backward
    pass; each all-reduce becomes a bucket, ready when the compute before it has run.
    """
    nodes = trace.get("nodes") if isinstance(trace, dict) else None
    if not isinstance(nodes, list) or not nodes:
        raise ValueError("a Chakra trace needs a non-empty 'nodes' list")
    order = _topological(nodes)
    t, fwd, sizes, ready_t = 0.0, None, [], []
    for n in order:
        kind = str(n.get("type", "")).upper()
        if "COMP" in kind:
            t += float(n.get("duration_micros", 0)) * 1e-6
        elif "COMM_COLL" in kind:
            if fwd is None:
                fwd = t
            sizes.append(int(n.get("comm_size", 0)))
            ready_t.append(t)
    if not sizes:
        raise ValueError("the trace has no COMM_COLL node")
    bwd = max(t - fwd, 1e-9)
    return Schedule(forward=fwd, backward=t - fwd, buckets=sizes,
                    ready=[min(1.0, (r - fwd) / bwd) for r in ready_t])


def _topological(nodes: list[dict]) -> list[dict]:
    by_id = {n["id"]: n for n in nodes}
    seen, out = set(), []

    def visit(n, stack=()):
        if n["id"] in seen:
            return
        if n["id"] in stack:
            raise ValueError(f"dependency cycle at node {n['id']}")
        for d in n.get("data_deps", []) + n.get("ctrl_deps", []):
            if d in by_id:
                visit(by_id[d], stack + (n["id"],))
        seen.add(n["id"])
        out.append(n)
    for n in sorted(nodes, key=lambda n: n["id"]):
        visit(n)
    return out


def load_schedule(path: str | Path) -> Schedule:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError([f"{path}: cannot read schedule: {exc}"]) from None
    try:
        if isinstance(data, dict) and "nodes" in data:
            return from_chakra(data)
        if isinstance(data, dict) and "model" in data:
            m = data["model"]
            return from_model(float(m["params"]), m.get("dtype", "bf16"), parse_time(m["compute"]),
                              parse_size(m.get("bucket", "25M")), int(m.get("model_parallel", 1)),
                              parse_time(m.get("optimizer", 0)), bool(m.get("overlap", True)))
        return Schedule.model_validate(data)
    except ValidationError as exc:
        raise InputError([f"{path}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                          for e in exc.errors()]) from None
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError([f"{path}: {exc}"]) from None

