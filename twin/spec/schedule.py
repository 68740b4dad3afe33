"""Training schedules: one iteration's compute and gradient buckets, in real units, from a file,
a model description or a Chakra-style trace. Sizes are real; the topology's bandwidth scale shrinks
them for the emulation, so communication keeps its real duration and compute stays real too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from twin.errors import InputError
from twin.spec.loading import Document, FileModel, at_most, read_document, validate
from twin.units import parse_size, parse_time

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}

# Limits of a schedule (docs/topology.md, "Limits of input files").
# The schedule goes to every rank as one command-line argument, which Linux caps at 128 KiB
# (MAX_ARG_STRLEN): 2,048 buckets with their ready fractions take at most ~80 KB of it.
MAX_BUCKETS = 2048
MAX_PHASE_S = 3600.0  # forward, backward, optimizer, compute: the replay waits each out
MAX_PARAMS = 4e12  # twice the largest published models
MAX_GRADIENT_BYTES = 16 * 1024**4  # 16 TiB: the fp32 gradient of MAX_PARAMS parameters
MAX_MODEL_PARALLEL = 65536
MAX_TRACE_NODES = 4 * MAX_BUCKETS  # a Chakra-style trace: its collectives and compute between


def _duration(v: Any) -> float:
    t = parse_time(v)
    if t > MAX_PHASE_S:
        raise ValueError(f"{v!r} is longer than {MAX_PHASE_S:g} s (one hour), the longest phase "
                         f"of an iteration the replay waits out")
    return t


class Schedule(FileModel):
    """One training iteration, in real (unscaled) units. In a file, ``model: {...}`` (a
    ModelSchedule) stands for the schedule derived from a model description."""

    forward: float = Field(description="seconds")
    backward: float = Field(description="seconds")
    optimizer: float = 0.0
    buckets: list[int] = Field(min_length=1, max_length=MAX_BUCKETS,
                               description="gradient bucket sizes (bytes, real)")
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
        at_most(v, MAX_BUCKETS, "buckets", "the schedule goes to every rank on its command "
                                           "line; use larger buckets")
        out = []
        for i, x in enumerate(v):
            try:
                out.append(parse_size(x))
            except ValueError as exc:
                raise ValueError(f"bucket {i}: {exc}") from None
        if any(b <= 0 for b in out):
            raise ValueError("bucket sizes must be positive")
        if sum(out) > MAX_GRADIENT_BYTES:
            raise ValueError(f"{sum(out) / 1024**4:.1f} TiB of gradient in all; at most "
                             f"{MAX_GRADIENT_BYTES // 1024**4} TiB")
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

    params: float = Field(gt=0, le=MAX_PARAMS, description="number of parameters, e.g. 7e9")
    dtype: str = Field(default="bf16", description=f"gradient data type: {', '.join(DTYPE_BYTES)}")
    compute: float = Field(description="compute per iteration, optimizer included, e.g. 16s")
    bucket: int = Field(default=25 * 2**20, gt=0, le=MAX_GRADIENT_BYTES,
                        description="gradient bucket size, e.g. 25M")
    model_parallel: int = Field(default=1, ge=1, le=MAX_MODEL_PARALLEL,
                                description="ways the gradient is split by model parallelism")
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

    @model_validator(mode="after")
    def _buckets_within_limit(self) -> "ModelSchedule":
        n = bucket_count(self.params, self.dtype, self.bucket, self.model_parallel)
        if n > MAX_BUCKETS:
            raise ValueError(f"{self.params:g} {self.dtype} parameters in buckets of {self.bucket:,} "
                             f"bytes make {n:,} buckets; at most {MAX_BUCKETS} (the schedule goes "
                             f"to every rank on its command line): use a larger bucket")
        return self

    def schedule(self) -> Schedule:
        return from_model(self.params, self.dtype, self.compute, self.bucket, self.model_parallel,
                          self.optimizer, self.overlap)


class _ModelShorthand(FileModel):
    model: ModelSchedule


def bucket_count(params: float, dtype: str, bucket: float, model_parallel: int = 1) -> int:
    """How many buckets from_model makes of a model's gradient."""
    return max(1, math.ceil(params * DTYPE_BYTES[dtype] / model_parallel / bucket))


def from_model(params: float, dtype: str = "bf16", compute_s: float = 16.0, bucket: float = 25 * 2**20,
               model_parallel: int = 1, optimizer_s: float = 0.0, overlap: bool = True) -> Schedule:
    """DDP-like schedule: forward = 1/3 and backward = 2/3 of compute, gradient in buckets."""
    grad = params * DTYPE_BYTES[dtype] / model_parallel
    n = bucket_count(params, dtype, bucket, model_parallel)
    sizes = [int(bucket)] * (n - 1) + [int(grad - bucket * (n - 1))]
    fwd = (compute_s - optimizer_s) / 3
    return Schedule(forward=fwd, backward=2 * fwd, optimizer=optimizer_s, buckets=sizes, overlap=overlap)


def _text(v: Any) -> Any:
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class ChakraNode(BaseModel):
    """One node of a Chakra-style trace: what the twin reads of it. Traces carry many more
    fields (names, attributes, tensors), which are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    id: int
    type: Annotated[str, BeforeValidator(_text)] = ""
    duration_micros: float = Field(default=0.0, ge=0, le=MAX_PHASE_S * 1e6)
    comm_size: int = Field(default=0, ge=0, le=MAX_GRADIENT_BYTES)
    data_deps: list[int] = Field(default_factory=list)
    ctrl_deps: list[int] = Field(default_factory=list)


class ChakraTrace(BaseModel):
    """A Chakra-style trace: its nodes, each id once."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    nodes: list[ChakraNode] = Field(min_length=1, description="a Chakra trace's non-empty node list")

    _n = field_validator("nodes", mode="before")(classmethod(lambda cls, v: at_most(
        v, MAX_TRACE_NODES, "nodes", "a trace of more holds more buckets than a schedule may")))

    @field_validator("nodes")
    @classmethod
    def _ids_once(cls, v: list[ChakraNode]) -> list[ChakraNode]:
        seen: set[int] = set()
        for n in v:
            if n.id in seen:
                raise ValueError(f"node id {n.id} is given to two nodes")
            seen.add(n.id)
        return v


def from_chakra(trace: dict | ChakraTrace) -> Schedule:
    """Chakra-style JSON: nodes with type COMP / COMM_COLL, duration_micros, comm_size, data_deps.

    Compute before the first collective is the forward pass; compute after it the backward
    pass; each all-reduce becomes a bucket, ready when the compute before it has run. A trace
    that is not one raises ValueError (pydantic's ValidationError for its fields).
    """
    if not isinstance(trace, ChakraTrace):
        trace = ChakraTrace.model_validate(trace)
    order = _topological(trace.nodes)
    t, sizes, ready_t = 0.0, [], []
    for n in order:
        kind = n.type.upper()
        if "COMP" in kind:
            t += n.duration_micros * 1e-6
        elif "COMM_COLL" in kind:
            sizes.append(n.comm_size)
            ready_t.append(t)
    if not sizes:
        raise ValueError("the trace has no COMM_COLL node")
    fwd = ready_t[0]  # the compute before the first collective
    bwd = max(t - fwd, 1e-9)
    return Schedule(forward=fwd, backward=t - fwd, buckets=sizes,
                    ready=[min(1.0, (r - fwd) / bwd) for r in ready_t])


def _topological(nodes: list[ChakraNode]) -> list[ChakraNode]:
    """The nodes in dependency order: from the lowest id, each after the nodes it depends on
    (data, then control dependencies; ids outside the trace are ignored). Iterative: a chain of
    thousands of nodes must not exhaust Python's stack."""
    by_id = {n.id: n for n in nodes}
    done: set[int] = set()
    out: list[ChakraNode] = []
    for first in sorted(nodes, key=lambda n: n.id):
        if first.id in done:
            continue
        path = [(first, iter(first.data_deps + first.ctrl_deps))]
        on_path = {first.id}
        while path:
            node, deps = path[-1]
            for d in deps:
                if d not in by_id or d in done:
                    continue
                if d in on_path:
                    raise ValueError(f"dependency cycle at node {d}")
                dep = by_id[d]
                path.append((dep, iter(dep.data_deps + dep.ctrl_deps)))
                on_path.add(d)
                break
            else:
                path.pop()
                on_path.discard(node.id)
                done.add(node.id)
                out.append(node)
    return out


def load_schedule(path: str | Path) -> Schedule:
    """A schedule file: times and buckets, ``model: {...}`` or a Chakra trace (``nodes``)."""
    return schedule_of(read_document(path))


def schedule_of(doc: Document) -> Schedule:
    """A schedule read from its file."""
    if isinstance(doc.data, dict) and "nodes" in doc.data:
        trace = validate(ChakraTrace, doc)
        try:
            return from_chakra(trace)
        except ValidationError as exc:  # what the trace adds up to is not a schedule
            raise InputError([doc.problem(("nodes",), f"the trace's {e['loc'][0]}: "
                                          f"{e['msg'].removeprefix('Value error, ')}")
                              for e in exc.errors()]) from None
        except ValueError as exc:
            raise InputError([doc.problem(("nodes",), str(exc))]) from None
    return validate(Schedule, doc)
