"""Training schedules: one iteration's compute and gradient buckets, in real units, from a file or
a model description (Chakra execution traces are twin.spec.chakra's). Sizes are real; the
topology's bandwidth scale shrinks them for the emulation, so communication keeps its real
duration and compute stays real too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

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
MAX_TRACE_NODES = 4 * MAX_BUCKETS  # of one rank's Chakra trace (twin.spec.chakra)


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


def load_schedule(path: str | Path) -> Schedule:
    """A schedule file: times and buckets, or ``model: {...}``."""
    return schedule_of(read_document(path))


def schedule_of(doc: Document) -> Schedule:
    """A schedule read from its file."""
    return validate(Schedule, doc)
