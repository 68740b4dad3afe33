"""Campaign files: a sweep of the fabric's parameters over one topology and one training schedule.

Validated like the topology, before anything starts: every value of the sweep is checked (a
distance, a rate, a loss, a known algorithm or controller), the topology file the campaign names
is loaded, and each problem is one line naming the file, the line and the field. Planning and
running the measurements is twin.experiments.campaign's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional, Union

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from controllers.run import CONTROLLERS
from traffic.collectives import ALLREDUCE_ALGOS
from twin.errors import InputError
from twin.spec.chakra import TraceJob, read_job
from twin.spec.loading import (
    Document,
    FileModel,
    Loc,
    at_most,
    field_path,
    read_document,
    validate,
)
from twin.spec.schedule import Schedule
from twin.spec.topology import (
    MAX_DISTANCE_KM,
    MAX_NAME_CHARS,
    MAX_WORKERS,
    MIN_EMULATED_RATE_BPS,
    Scale,
    Topology,
    bandwidth_ratio,
    dilation_factor,
    emulated_rate_problems,
    file_name,
    load_topology,
)
from twin.units import format_rate, parse_fraction, parse_rate, parse_time

# Limits of a campaign file (docs/topology.md, "Limits of input files"). A point takes its
# iterations + 1 (a warm-up) plus its share of a bring-up: 10-60 s on the CI machine, so 1,000
# points are half a day to two days of measurement; larger sweeps belong in several files.
MAX_POINTS = 1000  # every combination of the sweep's values x repeats
MAX_ITERATIONS = 100  # measured iterations per point (the median is reported)
MAX_REPEATS = 100
# The deadline of each operation of a point's job (connect, every send and receive): from one
# pass of the userspace switch to the longest phase a schedule may have.
MIN_TIMEOUT_S = 1e-3
MAX_TIMEOUT_S = 3600.0
# Each rank holds the emulated gradient (the schedule's buckets x the scale) in memory, and the
# machine holds every rank.
MAX_EMULATED_GRADIENT_BYTES = 1024**3

# The value of a parameter the sweep does not list: the topology's own distance and rate, no
# loss, ring all-reduce, overlap on, no controller, no interference.
UNSWEPT: dict[str, Any] = {"distance_km": None, "wan_rate": None, "loss": "0", "algo": "ring",
                           "overlap": True, "controller": "none", "interference": False}


def _alternatives(names: tuple[str, ...]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


def _one_of(v: Any, names: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in names:
        raise ValueError(f"{v!r} is not {_alternatives(names)}")
    return v


def _distance(v: Any) -> float:  # the fiber length of every link, as WanLink.distance_km
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_DISTANCE_KM:
        raise ValueError(f"{v!r} is not a distance in km (0 < d <= {MAX_DISTANCE_KM:g})")
    return float(v)


def _rate_text(v: Any) -> str:
    """A rate as written (it goes into the row id and the CSV as written), checked readable."""
    parse_rate(v)
    return str(v)


def _loss_text(v: Any) -> str:
    """A loss as written (it goes into the row id and the CSV as written), checked in [0, 1)."""
    if not 0 <= parse_fraction(v) < 1:
        raise ValueError(f"{v!r} must be in [0, 1)")
    return str(v)


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{v!r} must be true or false")
    return v


Distance = Annotated[float, BeforeValidator(_distance)]
RateText = Annotated[str, BeforeValidator(_rate_text)]
LossText = Annotated[str, BeforeValidator(_loss_text)]
Algo = Annotated[str, BeforeValidator(lambda v: _one_of(v, ALLREDUCE_ALGOS))]
Controller = Annotated[str, BeforeValidator(lambda v: _one_of(v, CONTROLLERS))]
Flag = Annotated[bool, BeforeValidator(_flag)]


def beside(v: Any, info: ValidationInfo, what: str) -> Path:
    """A path relative to the campaign file's folder (``base`` in the context); one that is not
    found there but is from the working directory is taken from there."""
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be the path of {what}")
    path = Path(v)
    base = (info.context or {}).get("base")
    if path.is_absolute() or base is None:
        return path
    there = (Path(base) / path).resolve()
    return path if not there.exists() and path.exists() else there


class TraceFiles(FileModel):
    """``schedule: {chakra: [FILE, ...]}``: the job is a Chakra execution trace, one file per rank
    of the job (twin.spec.chakra), rank 0 first, relative to the campaign file."""

    chakra: list[Path] = Field(min_length=1, description="Chakra trace files (.et), one per rank")

    @field_validator("chakra", mode="before")
    @classmethod
    def _files(cls, v: Any, info: ValidationInfo) -> list[Path]:
        if not isinstance(v, list):
            raise ValueError("must be a list of trace files, one per rank")
        at_most(v, MAX_WORKERS, "trace files", "one per rank, and a topology has at most as many workers")
        return [beside(x, info, "a Chakra trace file") for x in v]


class Sweep(FileModel):
    """The parameters a campaign varies, each with its list of values; every combination is
    measured. A parameter not listed keeps its UNSWEPT value."""

    distance_km: Optional[list[Distance]] = Field(
        default=None, description="fiber length of every WAN link")
    wan_rate: Optional[list[RateText]] = Field(
        default=None, description="real rate of every WAN link, e.g. 400Gbit")
    loss: Optional[list[LossText]] = Field(
        default=None, description="loss of every WAN link, e.g. 0.1% or 0.001")
    algo: Optional[list[Algo]] = Field(
        default=None, description=f"all-reduce: {', '.join(ALLREDUCE_ALGOS)}")
    overlap: Optional[list[Flag]] = Field(
        default=None, description="all-reduce overlapped with the backward pass")
    controller: Optional[list[Controller]] = Field(
        default=None, description=f"controller: {', '.join(CONTROLLERS)}")
    interference: Optional[list[Flag]] = Field(
        default=None, description="a full-rate UDP flow across the WAN during the job")

    @field_validator("*", mode="before")
    @classmethod
    def _values(cls, v: Any) -> Any:
        if not isinstance(v, list) or not v:
            raise ValueError("must be a non-empty list of values")
        return at_most(v, MAX_POINTS, "values", "a campaign measures at most as many points")

    @field_validator("*")
    @classmethod
    def _each_once(cls, v: Optional[list[Any]], info: ValidationInfo) -> Optional[list[Any]]:
        """A value listed twice would plan two points with one row id (one of them never run)."""
        if v is None:
            return v
        key = {"wan_rate": parse_rate, "loss": parse_fraction}.get(info.field_name or "", _same)
        seen: dict[Any, Any] = {}
        for x in v:
            if key(x) in seen:
                same = seen[key(x)]
                raise ValueError(f"{x!r} is listed twice; each value once" if str(same) == str(x)
                                 else f"{x!r} is {same!r} again; each value once")
            seen[key(x)] = x
        return v

    @model_validator(mode="after")
    def _something_swept(self) -> "Sweep":
        if not self.model_fields_set:
            raise ValueError("must list at least one parameter with values")
        return self

    def size(self) -> int:
        """How many combinations of values the sweep plans."""
        return math.prod(len(v) for v in self.axes().values())

    def axes(self) -> dict[str, list[Any]]:
        """Every parameter with the values it takes, in the order of the fields."""
        return {k: (v if v is not None else [UNSWEPT[k]]) for k, v in self}


class CampaignSpec(FileModel):
    """A campaign file."""

    name: str = Field(max_length=MAX_NAME_CHARS,
                      description="names the campaign's CSV (results/campaigns/NAME.csv)")
    description: str = ""
    topology: Path = Field(description="topology file, relative to the campaign file")
    schedule: Union[Schedule, TraceFiles] = Field(description=(
        "the training job: a schedule (forward, backward, buckets; or model), or "
        "{chakra: [FILE, ...]}, a Chakra execution trace with one file per rank"))
    iterations: int = Field(default=3, ge=1, le=MAX_ITERATIONS, strict=True,
                            description="measured iterations per point")
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS, strict=True,
                         description="measurements of every point")
    scale: Optional[str] = Field(default=None, description="bandwidth scale instead of the topology's, "
                                                   "e.g. 1/4000 (kept as written, for reports)")
    delay_compensation: Optional[bool] = Field(default=None, description=(
        "instead of the topology's delay_compensation: take the host's latency floor out of the "
        "delay stages (docs/emulation.md#delay-compensation)"))
    dilation: Optional[float] = Field(default=None, description="time dilation K instead of the "
                                      "topology's scale.time: the fabric played K times slower "
                                      "than real, reported in fabric time (docs/emulation.md)")
    timeout: float = Field(default=60.0, description=(
        "how long a rank of a point's job waits for a peer (connect, each send and receive) "
        "before the point fails; the single-site reference keeps 60 s"))
    sweep: Sweep
    _trace: Optional[TraceJob] = PrivateAttr(default=None)  # the files of TraceFiles, read

    @property
    def job(self) -> Union[Schedule, TraceJob]:
        """The training job: the schedule, or the trace its files hold (read by campaign_of)."""
        if isinstance(self.schedule, Schedule):
            return self.schedule
        if self._trace is None:
            raise ValueError("the campaign's trace files are read by campaign_of")
        return self._trace

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float:
        t = parse_time(v)
        if not MIN_TIMEOUT_S <= t <= MAX_TIMEOUT_S:
            raise ValueError(f"{v!r} is not between 1ms and {MAX_TIMEOUT_S:g}s")
        return t

    _n = field_validator("name")(classmethod(lambda cls, v: file_name(v)))

    @field_validator("topology", mode="before")
    @classmethod
    def _relative_to_campaign(cls, v: Any, info: ValidationInfo) -> Path:
        return beside(v, info, "a topology file")

    @field_validator("schedule", mode="wrap")
    @classmethod
    def _schedule_or_trace(cls, v: Any, handler: ValidatorFunctionWrapHandler,
                           info: ValidationInfo) -> Union[Schedule, TraceFiles]:
        """A mapping with ``chakra`` is a trace, any other a schedule: each validated as what it
        is, so a problem is reported as the one model's, not as both of a union's."""
        kind = TraceFiles if isinstance(v, dict) and "chakra" in v else Schedule
        return kind.model_validate(v, context=info.context)

    @field_validator("dilation", mode="before")
    @classmethod
    def _dilation(cls, v: Any) -> Optional[float]:
        return None if v is None else dilation_factor(v)

    @field_validator("scale", mode="before")
    @classmethod
    def _ratio_text(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        bandwidth_ratio(v)
        return str(v)

def _same(x: Any) -> Any:
    return x


def _plan_problems(spec: CampaignSpec) -> list[tuple[Loc, str]]:
    """The size of the plan, from the lengths of the sweep's lists (nothing is enumerated)."""
    points = spec.sweep.size() * spec.repeats
    if points <= MAX_POINTS:
        return []
    return [(("sweep",), f"the sweep plans {points} measurements ({spec.sweep.size()} "
                         f"combinations x {spec.repeats} repeats); at most {MAX_POINTS} in one "
                         f"campaign: split it into several files")]


def _cross_problems(spec: CampaignSpec, topo: Topology) -> list[tuple[Loc, str]]:
    """What the campaign asks of its topology, known before anything starts: the campaign's scale
    applied to the topology's rates, to every swept WAN rate and to the schedule's gradient (each
    what the twin can emulate), and workers to spare where the sweep has interference."""
    ratio = bandwidth_ratio(spec.scale) if spec.scale is not None else topo.scale.bandwidth
    at_scale = topo.model_copy(update={"scale": Scale(bandwidth=ratio)})
    where: Loc = ("scale",) if spec.scale is not None else ("topology",)
    problems: list[tuple[Loc, str]] = []
    data = topo.model_dump()
    for loc, reason in emulated_rate_problems(at_scale):
        if spec.sweep.wan_rate is not None and loc[0] == "links" and loc[-1] == "rate":
            continue  # every point replaces the link's rate with a swept one
        problems.append((where, f"{field_path(loc, data)}: {reason}"))
    floor = MIN_EMULATED_RATE_BPS
    for i, text in enumerate(spec.sweep.wan_rate or []):
        rate = parse_rate(text)
        # reservations are capped at half of the slowest link in every point (variant())
        lowest = min([rate] + [min(r.rate, rate * 0.5) for r in topo.reservations])
        if lowest * ratio < floor:
            what = "its reservations' share" if lowest < rate else "it"
            problems.append((("sweep", "wan_rate", i),
                             f"at scale {ratio:g} {what} is {format_rate(lowest * ratio)} "
                             f"emulated; the twin needs at least {format_rate(floor)}"))
    if spec.sweep.interference and True in spec.sweep.interference:
        few = [s.name for s in topo.sites if s.workers < 2]
        if few:
            problems.append((("sweep", "interference"),
                             f"needs at least 2 workers per site (the last one carries the "
                             f"interference); {', '.join(few)} of {topo.name} has 1"))
    job = spec.job
    if isinstance(job, TraceJob):
        return problems + _trace_problems(spec, job, topo, ratio)
    gradient = sum(job.scaled(ratio).buckets)
    if gradient > MAX_EMULATED_GRADIENT_BYTES:
        problems.append((("schedule",), f"the gradient is {gradient / 2**20:,.0f} MiB per rank at "
                                        f"scale {ratio:g}; at most "
                                        f"{MAX_EMULATED_GRADIENT_BYTES // 2**20:,} MiB (each rank "
                                        f"holds it in memory)"))
    return problems


def job_ranks(topo: Topology, sweep: Sweep) -> int:
    """How many ranks the training job has: every worker, but with interference in the sweep
    the last worker of each site carries it in every point (twin.experiments.campaign)."""
    spare = bool(sweep.interference and True in sweep.interference)
    return sum(s.workers - (1 if spare else 0) for s in topo.sites)


def _trace_problems(spec: CampaignSpec, job: TraceJob, topo: Topology,
                    ratio: float) -> list[tuple[Loc, str]]:
    """What a trace asks of the campaign: one file per rank of the job, no overlap swept (the
    trace's dependencies decide what overlaps), its buffers within each rank's memory."""
    problems: list[tuple[Loc, str]] = []
    ranks = job_ranks(topo, spec.sweep)
    if len(job.ranks) != ranks:
        problems.append((("schedule", "chakra"), f"{len(job.ranks)} trace files for a job of {ranks} "
                                                 f"ranks on {topo.name}; one file per rank"))
    if spec.sweep.overlap is not None:
        problems.append((("sweep", "overlap"), "a Chakra trace's dependencies decide what overlaps; "
                                               "overlap is swept with schedules only"))
    held = job.held_bytes(ratio)
    if held > MAX_EMULATED_GRADIENT_BYTES:
        problems.append((("schedule",), f"the trace's largest collective takes {held / 2**20:,.0f} "
                                        f"MiB per rank at scale {ratio:g}; at most "
                                        f"{MAX_EMULATED_GRADIENT_BYTES // 2**20:,} MiB"))
    return problems


def load_campaign_spec(path: str | Path) -> tuple[CampaignSpec, Topology]:
    """The campaign file and the topology it names, both validated."""
    return campaign_of(read_document(path))


def campaign_of(doc: Document) -> tuple[CampaignSpec, Topology]:
    """A campaign read from its file, and the topology it names; the topology's problems come
    with the line of the campaign's ``topology`` field in front."""
    spec = validate(CampaignSpec, doc, context={"base": Path(doc.source).parent})
    if isinstance(spec.schedule, TraceFiles):
        try:
            spec._trace = read_job(spec.schedule.chakra)
        except InputError as exc:
            raise InputError([doc.problem(("schedule", "chakra"), p) for p in exc.problems]) from None
    problems = _plan_problems(spec)
    if problems:
        raise InputError([doc.problem(loc, reason) for loc, reason in problems])
    try:
        topo = load_topology(spec.topology)
    except InputError as exc:
        raise InputError([doc.problem(("topology",), p) for p in exc.problems]) from None
    problems = _cross_problems(spec, topo)
    if problems:
        raise InputError([doc.problem(loc, reason) for loc, reason in problems])
    return spec, topo
