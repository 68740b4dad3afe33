"""Measurement campaigns: sweeps of the fabric's parameters, one tidy CSV row per measurement.

A campaign file names a topology, a training schedule and a sweep (distance, WAN rate, loss,
algorithm, overlap, controller, interference); ``twin campaign run`` plans every measurement,
brings each fabric variant up once, replays the schedule on it, and appends one row per
measurement with its model prediction and error. Rows are keyed, so an interrupted campaign
resumes where it stopped with no row lost or duplicated; a failed measurement becomes a failed
row with its error, and the campaign goes on.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from twin.emulation import runtime
from twin.errors import InputError, TwinError
from twin.host import rundirs
from twin.host.capabilities import link_mechanism, ovs_datapath
from twin.model.fabric import fabric_from_topology
from twin.model.iteration import Iteration, predict
from twin.spec.schedule import Schedule, from_model
from twin.spec.topology import Topology, load_topology, single_site
from twin.units import format_rate, parse_fraction, parse_rate

SWEEP_KEYS = {
    "distance_km": float, "wan_rate": str, "loss": str, "algo": str, "overlap": bool,
    "controller": str, "interference": bool,
}
TWIN_KEYS = ("distance_km", "wan_rate", "loss", "controller")  # what needs a new bring-up
DEFAULTS = {"distance_km": None, "wan_rate": None, "loss": "0", "algo": "ring", "overlap": True,
            "controller": "none", "interference": False}
TOP_KEYS = {"name", "description", "topology", "schedule", "iterations", "repeats", "seed",
            "sweep", "scale"}
FIELDS = ["row_id", "campaign", "status", "error", "fault", "time", "git_commit", "machine", "kernel",
          "link_mechanism", "ovs_datapath", "topology", "scale", "sites", "workers", "repeat",
          "distance_km", "one_way_delay_ms", "wan_rate_real", "wan_rate_emulated_mbps", "loss",
          "algo", "overlap", "controller", "interference", "iterations", "compute_s",
          "gradient_bytes_emulated", "iteration_s", "iteration_s_min", "iteration_s_max",
          "exposed_s", "comm_s", "single_site_iteration_s", "efficiency", "model_iteration_s",
          "model_error", "model_efficiency"]


@dataclass
class Campaign:
    name: str
    topology_file: str
    topology: Topology
    schedule: Schedule
    iterations: int
    repeats: int
    sweep: dict[str, list]
    source: str
    scale: Optional[str] = None
    description: str = ""

    def points(self) -> list[dict]:
        keys = list(SWEEP_KEYS)
        values = [self.sweep.get(k, [DEFAULTS[k]]) for k in keys]
        out = []
        for combo in itertools.product(*values):
            for rep in range(self.repeats):
                p = dict(zip(keys, combo), repeat=rep)
                p["row_id"] = row_id(self.name, p)
                out.append(p)
        return out


def row_id(campaign: str, point: dict) -> str:
    key = json.dumps({k: point[k] for k in sorted(point) if k != "row_id"}, sort_keys=True)
    return hashlib.sha256(f"{campaign}|{key}".encode()).hexdigest()[:16]


def _lines(text: str) -> dict[str, int]:
    """'key' and 'sweep.key' -> line number, for error messages that name the line."""
    out: dict[str, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return out
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            out[k.value] = k.start_mark.line + 1
            if k.value == "sweep" and isinstance(v, yaml.MappingNode):
                for sk, _ in v.value:
                    out[f"sweep.{sk.value}"] = sk.start_mark.line + 1
    return out


def load_campaign(path: str | Path) -> Campaign:
    """Validate everything before anything starts; one line per problem, naming the line."""
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except OSError as exc:
        raise InputError([f"{path}: cannot read file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError([f"{path}: line {mark.line + 1 if mark else '?'}: not valid YAML"]) from None
    if not isinstance(data, dict):
        raise InputError([f"{path}: line 1: a campaign is a mapping (name, topology, schedule, sweep)"])
    lines = _lines(text)
    problems: list[str] = []

    def bad(key, msg: str) -> None:
        label = key if str(key).replace(".", "_").isidentifier() else repr(key)  # one line, always
        problems.append(f"{path}: line {lines.get(key, '?')}: {label}: {msg}")

    for k in data:
        if k not in TOP_KEYS:
            bad(k, f"unknown field (known: {', '.join(sorted(TOP_KEYS))})")
    for k in ("name", "topology", "schedule", "sweep"):
        if k not in data:
            problems.append(f"{path}: {k}: missing")
    if problems:
        raise InputError(problems)
    topo_file = str((path.parent / data["topology"]).resolve()) if not Path(data["topology"]).is_absolute() \
        else data["topology"]
    if not Path(topo_file).exists() and Path(data["topology"]).exists():
        topo_file = data["topology"]
    try:
        topo = load_topology(topo_file)
    except InputError as exc:
        raise InputError([f"{path}: line {lines.get('topology', '?')}: topology: {p}" for p in exc.problems]) from None
    try:
        s = data["schedule"]
        if isinstance(s, dict) and "model" in s:
            m = s["model"]
            sched = from_model(float(m["params"]), m.get("dtype", "bf16"), float(m.get("compute_s", 1.0)),
                               float(m.get("bucket_bytes", 25 * 2**20)), int(m.get("model_parallel", 1)))
        else:
            sched = Schedule.model_validate(s)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError([f"{path}: line {lines.get('schedule', '?')}: schedule: "
                          f"{str(exc).splitlines()[0]}"]) from None
    sweep = data["sweep"]
    if not isinstance(sweep, dict) or not sweep:
        bad("sweep", "must list at least one parameter with values")
        raise InputError(problems)
    clean: dict[str, list] = {}
    for k, vals in sweep.items():
        key = f"sweep.{k}"
        if k not in SWEEP_KEYS:
            bad(key, f"unknown parameter (known: {', '.join(SWEEP_KEYS)})")
            continue
        if not isinstance(vals, list) or not vals:
            bad(key, "must be a non-empty list of values")
            continue
        try:
            clean[k] = [_check(k, v, topo) for v in vals]
        except ValueError as exc:
            bad(key, str(exc))
    for k in ("iterations", "repeats"):
        if k in data and (not isinstance(data[k], int) or data[k] < 1):
            bad(k, "must be a whole number >= 1")
    if problems:
        raise InputError(problems)
    return Campaign(name=str(data["name"]), topology_file=topo_file, topology=topo, schedule=sched,
                    iterations=int(data.get("iterations", 3)), repeats=int(data.get("repeats", 1)),
                    sweep=clean, source=str(path), scale=data.get("scale"),
                    description=str(data.get("description", "")))


def _check(key: str, value: Any, topo: Topology) -> Any:
    if key == "distance_km":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 20000:
            raise ValueError(f"{value!r} is not a distance in km (0 < d <= 20000)")
        return float(value)
    if key == "wan_rate":
        if parse_rate(value) <= 0:
            raise ValueError(f"{value!r} must be positive")
        return str(value)
    if key == "loss":
        f = parse_fraction(value)
        if not 0 <= f < 1:
            raise ValueError(f"{value!r} must be in [0, 1)")
        return str(value)
    if key == "algo":
        if value not in ("ring", "hd", "tree", "hier"):
            raise ValueError(f"{value!r} is not ring, hd, tree or hier")
        return value
    if key == "controller":
        if value not in ("none", "detpath", "baseline"):
            raise ValueError(f"{value!r} is not none, detpath or baseline")
        return value
    if key in ("overlap", "interference"):
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} must be true or false")
        return value
    raise ValueError(f"unknown parameter {key}")


def variant(c: Campaign, p: dict) -> Topology:
    """The topology for one sweep point: every WAN link gets the point's distance/rate/loss."""
    topo = c.topology
    if c.scale:
        from twin.spec.topology import Scale
        topo = topo.model_copy(update={"scale": Scale(bandwidth=c.scale)})
    links = []
    for l in topo.links:
        upd: dict[str, Any] = {"loss": parse_fraction(p["loss"])}
        if p["distance_km"] is not None:
            upd.update(distance_km=p["distance_km"], delay=None)
        if p["wan_rate"] is not None:
            upd["rate"] = parse_rate(p["wan_rate"])
        links.append(l.model_copy(update=upd))
    reservations = [r.model_copy(update={"rate": min(r.rate, min(l.rate for l in links) * 0.5)})
                    for r in topo.reservations]
    return topo.model_copy(update={"links": links, "reservations": reservations})


CODE_PATHS = ("twin", "traffic", "controllers", "topologies", "campaigns", "benchmarks", "scripts",
              "pyproject.toml", "requirements.lock", "Makefile")


def git_commit() -> str:
    """Short commit of the code that made a row, with "+dirty" if a tracked file that can change
    a measurement (code, topologies, campaigns, set-up) differs from it: a row must never claim
    code it was not made with. Results and docs do not count."""
    root = rundirs.project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=root).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                  *CODE_PATHS], capture_output=True, text=True,
                                 cwd=root).stdout.strip()
    except OSError:
        return ""
    return f"{head}+dirty" if head and changed else head


def existing_rows(csv_path: Path) -> set[str]:
    if not csv_path.exists():
        return set()
    with csv_path.open() as fh:
        return {r["row_id"] for r in csv.DictReader(fh) if r.get("row_id")}


def append_row(csv_path: Path, row: dict) -> None:
    """Append and flush one row; the header is written once. fsync so a kill loses nothing."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    new = not csv_path.exists() or csv_path.stat().st_size == 0
    fields = FIELDS
    if not new:  # resuming a CSV written by another version: keep its columns, in its order
        with csv_path.open(newline="") as fh:
            fields = next(csv.reader(fh), FIELDS) or FIELDS
    with csv_path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in fields})
        fh.flush()
        os.fsync(fh.fileno())


def estimate_seconds(c: Campaign, todo: list[dict]) -> float:
    """Bring-ups plus replay time predicted by the model (warm-up iteration included)."""
    per_twin = 6.0
    twins = len({tuple(p[k] for k in TWIN_KEYS) for p in todo}) + 1
    total = twins * per_twin
    for p in todo:
        topo = variant(c, p)
        it = Iteration(c.schedule.forward, c.schedule.backward, c.schedule.optimizer,
                       tuple(c.schedule.scaled(topo.scale.bandwidth).buckets), p["overlap"])
        total += (c.iterations + 1) * predict(p["algo"], fabric_from_topology(topo), it).iteration + 2
    return total


def job_workers(state, spare_one: bool) -> Optional[list[str]]:
    """The training job's ranks. With interference in the sweep, the last worker of each site is
    kept out of the job in every point (so all points compare the same job) and sources or sinks
    the interference: the job's own NICs then never carry it, only the shared WAN does."""
    if not spare_one:
        return None
    by_site: dict[str, list[str]] = {}
    for w in state.workers:
        by_site.setdefault(w.site, []).append(w.name)
    if any(len(v) < 2 for v in by_site.values()):
        raise TwinError("interference needs at least 2 workers per site (one carries the interference)")
    return [n for names in by_site.values() for n in names[:-1]]


@dataclass
class RunContext:
    single_site: dict = field(default_factory=dict)  # overlap -> measured single-site iteration


def run(c: Campaign, csv_path: Path, progress: Callable[[str], None] = lambda s: None,
        on_point: Callable[[int, int], None] = lambda done, total: None) -> tuple[int, int]:
    """Run every planned point not yet in the CSV. Returns (rows written, rows failed)."""
    from twin.drive.crosstraffic import start_interference
    from twin.drive.replay import run_training
    done = existing_rows(csv_path)
    todo = [p for p in c.points() if p["row_id"] not in done]
    written = failed = 0
    ctx = RunContext()
    base = {"campaign": c.name, "git_commit": git_commit(), "machine": platform.node(),
            "kernel": platform.release(), "link_mechanism": link_mechanism(),
            "ovs_datapath": ovs_datapath()}
    # single-site reference, measured once per overlap setting in this run
    overlaps = sorted({p["overlap"] for p in todo})
    spare = any(p["interference"] for p in c.points())
    if todo:
        one = single_site(variant(c, todo[0]))
        _, st = runtime.up(one, c.topology_file, "none", progress)
        try:
            ranks = None
            if spare:  # the same number of ranks as the spread job, in one site
                n_job = sum(site.workers - 1 for site in c.topology.sites)
                ranks = [w.name for w in st.workers[:n_job]]
            for ov in overlaps:
                s = c.schedule.scaled(one.scale.bandwidth).model_copy(update={"overlap": ov})
                res = run_training(st, s, "ring", iterations=c.iterations, workers=ranks)
                ctx.single_site[ov] = statistics.median(r.iteration_s for r in res)
        finally:
            runtime.down()
    groups: dict[tuple, list[dict]] = {}
    for p in todo:
        groups.setdefault(tuple(p[k] for k in TWIN_KEYS), []).append(p)
    n = 0
    for key, points in groups.items():
        topo = variant(c, points[0])
        state = None
        try:
            _, state = runtime.up(topo, c.topology_file, points[0]["controller"], progress)
        except TwinError as exc:
            for p in points:
                append_row(csv_path, _row(c, base, topo, p, ctx, error=f"bring-up: {exc}",
                                          fault="bring-up failed"))
                failed += 1
                n += 1
                on_point(n, len(todo))
            runtime.down()
            continue
        try:
            for p in points:
                progress(f"point {n + 1}/{len(todo)}: {_describe(p)}")
                s = c.schedule.scaled(topo.scale.bandwidth).model_copy(update={"overlap": p["overlap"]})
                noise = None
                try:
                    if p["interference"]:
                        a = [w for w in state.workers if w.site == topo.links[0].a]
                        b = [w for w in state.workers if w.site == topo.links[0].b]
                        secs = 3600  # outlasts any job; stopped as soon as the job ends
                        noise = start_interference(a[-1], b[-1], 5399,
                                                   topo.emulated_rate(topo.links[0].rate), secs,
                                                   state.mtu)
                    res = run_training(state, s, p["algo"], iterations=c.iterations,
                                       workers=job_workers(state, spare))
                    if noise and not noise.running():
                        _, err = noise.client.communicate()
                        raise TwinError(f"the interference flow stopped before the job ended: "
                                        f"{(err or '').strip()[-200:] or 'no error output'}")
                    append_row(csv_path, _row(c, base, topo, p, ctx, res=res, sched=s))
                    written += 1
                except (TwinError, RuntimeError) as exc:
                    append_row(csv_path, _row(c, base, topo, p, ctx, error=str(exc),
                                              fault=diagnose(state, str(exc))))
                    failed += 1
                finally:
                    if noise:
                        noise.stop()
                n += 1
                on_point(n, len(todo))
        finally:
            runtime.down()
    return written, failed


def _describe(p: dict) -> str:
    return ", ".join(f"{k}={p[k]}" for k in SWEEP_KEYS if p[k] is not None)


def diagnose(state, error: str) -> str:
    """What happened, for the CSV: the twin's parts that were found dead right after the failure
    (controller, delay lines, workers, WAN links cut), else the kind of error."""
    try:
        problems = runtime.health(state)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must never hide the row itself
        problems = [f"health check failed: {exc}"]
    if problems:
        return "; ".join(problems)
    text = error.lower()
    for needle, kind in (("timed out", "timeout (no part of the twin found dead)"),
                         ("interference flow stopped", "interference flow died"),
                         ("peer closed", "connection closed by a peer"),
                         ("refused", "connection refused")):
        if needle in text:
            return kind
    return "error in the job (twin healthy)"


def _row(c: Campaign, base: dict, topo: Topology, p: dict, ctx: RunContext, res=None,
         sched: Optional[Schedule] = None, error: str = "", fault: str = "") -> dict:
    link = topo.links[0]
    row = dict(base, row_id=p["row_id"], status="failed" if error else "ok", error=error,
               fault=fault,
               time=time.strftime("%Y-%m-%dT%H:%M:%S"), topology=topo.name,
               scale=topo.scale.describe(), sites=len(topo.sites),
               workers=sum(s.workers for s in topo.sites), repeat=p["repeat"],
               distance_km=round(topo.link_distance_km(link), 1),
               one_way_delay_ms=round(topo.link_delay(link) * 1e3, 3),
               wan_rate_real=format_rate(link.rate),
               wan_rate_emulated_mbps=round(topo.emulated_rate(link.rate) / 1e6, 3),
               loss=p["loss"], algo=p["algo"], overlap=p["overlap"], controller=p["controller"],
               interference=p["interference"], iterations=c.iterations)
    if res:
        times = [r.iteration_s for r in res]
        measured = statistics.median(times)
        it = Iteration(sched.forward, sched.backward, sched.optimizer, tuple(sched.buckets), p["overlap"])
        model = predict(p["algo"], fabric_from_topology(topo), it).iteration
        model_single = predict("ring", fabric_from_topology(single_site(topo)), it).iteration
        single = ctx.single_site.get(p["overlap"])
        row.update(compute_s=round(sched.compute, 4), gradient_bytes_emulated=sum(sched.buckets),
                   iteration_s=round(measured, 4), iteration_s_min=round(min(times), 4),
                   iteration_s_max=round(max(times), 4),
                   exposed_s=round(statistics.median(r.exposed_s for r in res), 4),
                   comm_s=round(statistics.median(r.comm_s for r in res), 4),
                   single_site_iteration_s=round(single, 4) if single else "",
                   efficiency=round(single / measured, 4) if single else "",
                   model_iteration_s=round(model, 4), model_error=round((measured - model) / model, 4),
                   model_efficiency=round(model_single / model, 4))
    return row
