"""Training schedules: one iteration's compute and gradient buckets, in real units, from a file,
a model description or a Chakra-style trace. Sizes are real; the topology's bandwidth scale shrinks
them for the emulation, so communication keeps its real duration and compute stays real too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from twin.errors import InputError
from twin.spec.loading import FileModel, read_document, validate
from twin.units import parse_size, parse_time

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


def _duration(v: Any) -> float:
    t = parse_time(v)
    if t < 0:
        raise ValueError("must not be negative")
    return t


class Schedule(FileModel):
    """One training iteration, in real (unscaled) units. In a file, ``model: {...}`` (a
    ModelSchedule) stands for the schedule derived from a model description."""

    forward: float = Field(description="seconds")
    backward: float = Field(description="seconds")
    optimizer: float = 0.0
    buckets: list[int] = Field(min_length=1, description="gradient bucket sizes (bytes, real)")
    ready: Optional[list[float]] = Field(
        default=None, description="fraction of backward done when each bucket is ready")
    overlap: bool = True

    _t = field_validator("forward", "backward", "optimizer", mode="before")(
        classmethod(lambda cls, v: _duration(v)))

    @field_validator("buckets", mode="before")
    @classmethod
    def _b(cls, v: Any) -> list[int]:
        if not isinstance(v, list):
            raise ValueError("must be a list of sizes")
        out = [parse_size(x) for x in v]
        if any(b <= 0 for b in out):
            raise ValueError("bucket sizes must be positive")
        return out

    @model_validator(mode="before")
    @classmethod
    def _from_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model" in data:
            if len(data) > 1:
                raise ValueError("give either model or forward, backward and buckets, not both")
            return _ModelShorthand.model_validate(data).model.schedule().model_dump()
        return data

    @field_validator("ready")
    @classmethod
    def _one_fraction_per_bucket(cls, v: Optional[list[float]],
                                 info: ValidationInfo) -> Optional[list[float]]:
        if v is None:
            return None
        if any(not 0 <= r <= 1 for r in v):
            raise ValueError("fractions must be in [0, 1]")
        buckets = info.data.get("buckets")
        if buckets is not None and len(v) != len(buckets):
            raise ValueError(f"{len(v)} fractions for {len(buckets)} buckets")
        return v

    @property
    def compute(self) -> float:
        return self.forward + self.backward + self.optimizer

    def scaled(self, scale: float) -> "Schedule":
        """Sizes shrink with the bandwidth so each transfer keeps its real duration."""
        return self.model_copy(update={"buckets": [max(4, int(b * scale)) for b in self.buckets]})


class ModelSchedule(FileModel):
    """A DDP-like schedule described by the model: parameters, data type, compute per iteration."""

    params: float = Field(gt=0, description="number of parameters, e.g. 7e9")
    dtype: str = Field(default="bf16", description=f"gradient data type: {', '.join(DTYPE_BYTES)}")
    compute: float = Field(description="compute per iteration, optimizer included, e.g. 16s")
    bucket: int = Field(default=25 * 2**20, gt=0, description="gradient bucket size, e.g. 25M")
    model_parallel: int = Field(default=1, ge=1, description="ways the gradient is split by model parallelism")
    optimizer: float = 0.0
    overlap: bool = True

    _t = field_validator("compute", "optimizer", mode="before")(
        classmethod(lambda cls, v: _duration(v)))
    _s = field_validator("bucket", mode="before")(classmethod(lambda cls, v: parse_size(v)))

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPE_BYTES:
            raise ValueError(f"{v!r} is not {', '.join(DTYPE_BYTES)}")
        return v

    @model_validator(mode="after")
    def _optimizer_within_compute(self) -> "ModelSchedule":
        if self.optimizer > self.compute:
            raise ValueError("optimizer is longer than compute, which includes it")
        return self

    def schedule(self) -> Schedule:
        return from_model(self.params, self.dtype, self.compute, self.bucket, self.model_parallel,
                          self.optimizer, self.overlap)


class _ModelShorthand(FileModel):
    model: ModelSchedule


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
    t, sizes, ready_t = 0.0, [], []
    for n in order:
        kind = str(n.get("type", "")).upper()
        if "COMP" in kind:
            t += float(n.get("duration_micros", 0)) * 1e-6
        elif "COMM_COLL" in kind:
            sizes.append(int(n.get("comm_size", 0)))
            ready_t.append(t)
    if not sizes:
        raise ValueError("the trace has no COMM_COLL node")
    fwd = ready_t[0]  # the compute before the first collective
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
    """A schedule file: times and buckets, ``model: {...}`` or a Chakra trace (``nodes``)."""
    doc = read_document(path)
    if isinstance(doc.data, dict) and "nodes" in doc.data:
        try:
            return from_chakra(doc.data)
        except KeyError as exc:
            raise InputError([doc.problem(("nodes",), f"a node has no {exc}")]) from None
        except ValidationError as exc:  # what the trace adds up to is not a schedule
            raise InputError([doc.problem(("nodes",), f"the trace's {e['loc'][0]}: "
                                          f"{e['msg'].removeprefix('Value error, ')}")
                              for e in exc.errors()]) from None
        except (ValueError, TypeError) as exc:
            raise InputError([doc.problem(("nodes",), str(exc))]) from None
    return validate(Schedule, doc)
