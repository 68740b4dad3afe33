"""Campaign files: a sweep of the fabric's parameters over one topology and one training schedule.

Validated like the topology, before anything starts: every value of the sweep is checked (a
distance, a rate, a loss, a known algorithm or controller), the topology file the campaign names
is loaded, and each problem is one line naming the file, the line and the field. Planning and
running the measurements is twin.experiments.campaign's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from controllers.run import CONTROLLERS
from traffic.collectives import ALLREDUCE_ALGOS
from twin.errors import InputError
from twin.spec.loading import FileModel, read_document, validate
from twin.spec.schedule import Schedule
from twin.spec.topology import Topology, bandwidth_ratio, dilation_factor, load_topology
from twin.units import parse_fraction, parse_rate

MAX_DISTANCE_KM = 20000.0  # half the Earth's circumference, rounded
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

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


def _distance(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_DISTANCE_KM:
        raise ValueError(f"{v!r} is not a distance in km (0 < d <= {MAX_DISTANCE_KM:g})")
    return float(v)


def _rate_text(v: Any) -> str:
    """A rate as written (it goes into the row id and the CSV as written), checked positive."""
    if parse_rate(v) <= 0:
        raise ValueError(f"{v!r} must be positive")
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
        return v

    @model_validator(mode="after")
    def _something_swept(self) -> "Sweep":
        if not self.model_fields_set:
            raise ValueError("must list at least one parameter with values")
        return self

    def axes(self) -> dict[str, list[Any]]:
        """Every parameter with the values it takes, in the order of the fields."""
        return {k: (v if v is not None else [UNSWEPT[k]]) for k, v in self}


class CampaignSpec(FileModel):
    """A campaign file."""

    name: str = Field(description="names the campaign's CSV (results/campaigns/NAME.csv)")
    description: str = ""
    topology: Path = Field(description="topology file, relative to the campaign file")
    schedule: Schedule
    iterations: int = Field(default=3, ge=1, strict=True, description="measured iterations per point")
    repeats: int = Field(default=1, ge=1, strict=True, description="measurements of every point")
    scale: Optional[str] = Field(default=None, description="bandwidth scale instead of the topology's, "
                                                   "e.g. 1/4000 (kept as written, for reports)")
    dilation: Optional[float] = Field(default=None, description="time dilation K instead of the "
                                      "topology's scale.time: the fabric played K times slower "
                                      "than real, reported in fabric time (docs/emulation.md)")
    sweep: Sweep

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"{v!r}: use letters, digits, '.', '_' and '-' (it names a file)")
        return v

    @field_validator("topology", mode="before")
    @classmethod
    def _relative_to_campaign(cls, v: Any, info: ValidationInfo) -> Path:
        """Relative to the campaign file's folder (``base`` in the context); a path that is not
        found there but is from the working directory is taken from there."""
        if not isinstance(v, str) or not v:
            raise ValueError("must be the path of a topology file")
        path = Path(v)
        base = (info.context or {}).get("base")
        if path.is_absolute() or base is None:
            return path
        beside = (Path(base) / path).resolve()
        return path if not beside.exists() and path.exists() else beside

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


def load_campaign_spec(path: str | Path) -> tuple[CampaignSpec, Topology]:
    """The campaign file and the topology it names, both validated; the topology's problems
    come with the line of the campaign's ``topology`` field in front."""
    doc = read_document(path)
    spec = validate(CampaignSpec, doc, context={"base": Path(path).parent})
    try:
        topo = load_topology(spec.topology)
    except InputError as exc:
        raise InputError([doc.problem(("topology",), p) for p in exc.problems]) from None
    return spec, topo
