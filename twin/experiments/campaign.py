"""Measurement campaigns: sweeps of the fabric's parameters, one tidy CSV row per measurement.

A campaign file names a topology, a training schedule and a sweep (distance, WAN rate, loss,
algorithm, overlap, controller, interference); ``twin campaign run`` plans every measurement,
brings each fabric variant up once, replays the schedule on it, and appends one row per
measurement with its model prediction and error. Rows are keyed, so an interrupted campaign
resumes where it stopped with no row lost or duplicated; a failed measurement becomes a failed
row with its error, and the campaign goes on. On request (``--retry-failed``) a resumed campaign
runs again the points whose latest row failed, appending a new row: every attempt stays in the
CSV, and each row id counts by its latest attempt.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

from twin.emulation import runtime
from twin.errors import InputError, TwinError
from twin.host.capabilities import link_mechanism, ovs_datapath
from twin.host.provenance import git_commit
from twin.measure.hostload import HOST_FIELDS, host_columns
from twin.model.fabric import fabric_from_topology
from twin.model.iteration import Iteration, predict
from twin.spec.campaign import Sweep, load_campaign_spec
from twin.spec.chakra import TraceJob
from twin.spec.loading import Table, read_table
from twin.spec.schedule import Schedule
from twin.spec.topology import Scale, Topology, bandwidth_ratio, single_site
from twin.units import format_rate, parse_fraction, parse_rate

TWIN_KEYS = ("distance_km", "wan_rate", "loss", "controller")  # what needs a new bring-up
FIELDS = ["row_id", "campaign", "status", "error", "fault", "time", "git_commit", "machine", "kernel",
          "link_mechanism", "ovs_datapath", "topology", "scale", "sites", "workers", "repeat",
          "distance_km", "one_way_delay_ms", "wan_rate_real", "wan_rate_emulated_mbps", "loss",
          "algo", "overlap", "controller", "interference", "iterations", "compute_s",
          "gradient_bytes_emulated", "iteration_s", "iteration_s_min", "iteration_s_max",
          "exposed_s", "comm_s", "single_site_iteration_s", "efficiency", "model_iteration_s",
          "model_error", "model_efficiency", "dilation", *HOST_FIELDS]
KEY_FIELDS = ("row_id", "campaign", "status")  # what resuming reads of a campaign CSV
STATUSES = ("ok", "failed")


@dataclass
class Campaign:
    """A campaign as the runner plans and runs it, from its validated file (twin.spec.campaign);
    ``topology`` is the topology the file names, at the campaign's scale when it gives one. A
    caller may shorten ``iterations`` and ``repeats`` for a quick run (the demo does)."""

    name: str
    description: str
    topology_file: str
    topology: Topology
    schedule: Union[Schedule, TraceJob]  # a schedule, or a Chakra trace (one rank a file)
    iterations: int
    repeats: int
    scale: Optional[str]  # the campaign's bandwidth scale as written (e.g. 1/4000), if any
    sweep: Sweep
    timeout: float = 60.0  # per operation of each point's job (s); the reference keeps 60 s

    def points(self) -> list[dict]:
        """Every measurement: each combination of the sweep's values, each repeat, keyed."""
        axes = self.sweep.axes()
        out = []
        for combo in itertools.product(*axes.values()):
            for rep in range(self.repeats):
                p = dict(zip(axes, combo), repeat=rep)
                p["row_id"] = row_id(self.name, p)
                out.append(p)
        return out


def row_id(campaign: str, point: dict) -> str:
    key = json.dumps({k: point[k] for k in sorted(point) if k != "row_id"}, sort_keys=True)
    return hashlib.sha256(f"{campaign}|{key}".encode()).hexdigest()[:16]


def load_campaign(path: str | Path) -> Campaign:
    """Validate everything before anything starts; one line per problem, naming the line."""
    spec, topo = load_campaign_spec(path)
    if spec.scale is not None:
        topo = topo.model_copy(update={"scale": Scale(bandwidth=bandwidth_ratio(spec.scale),
                                                      time=topo.scale.time)})
    if spec.dilation is not None:
        topo = topo.with_dilation(spec.dilation)
    if spec.delay_compensation is not None:
        topo = topo.model_copy(update={"delay_compensation": spec.delay_compensation})
    return Campaign(name=spec.name, description=spec.description, topology_file=str(spec.topology),
                    topology=topo, schedule=spec.job, iterations=spec.iterations,
                    repeats=spec.repeats, scale=spec.scale, sweep=spec.sweep,
                    timeout=spec.timeout)


def describe_point(p: dict) -> str:
    """The point's parameters, for progress lines and dry runs: 'algo=ring, overlap=True, ...'."""
    return ", ".join(f"{k}={p[k]}" for k in Sweep.model_fields if p[k] is not None)


def variant(c: Campaign, p: dict) -> Topology:
    """The topology for one sweep point: every WAN link gets the point's distance/rate/loss."""
    topo = c.topology
    links = []
    for link in topo.links:
        upd: dict[str, Any] = {"loss": parse_fraction(p["loss"])}
        if p["distance_km"] is not None:
            upd.update(distance_km=p["distance_km"], delay=None)
        if p["wan_rate"] is not None:
            upd["rate"] = parse_rate(p["wan_rate"])
        links.append(link.model_copy(update=upd))
    reservations = [r.model_copy(update={"rate": min(r.rate, min(link.rate for link in links) * 0.5)})
                    for r in topo.reservations]
    return topo.model_copy(update={"links": links, "reservations": reservations})


def read_campaign_csv(csv_path: Path, required: Iterable[str] = KEY_FIELDS) -> Table:
    """Every row of a campaign CSV, each attempt of each point; a file that is not one (a foreign
    or damaged CSV, a column of ``required`` missing, a status that is neither ok nor failed, a
    row without its id) is one line."""
    table = read_table(csv_path, dict.fromkeys([*KEY_FIELDS, *required]), "a campaign CSV")
    for i, r in enumerate(table.rows):
        if not r["row_id"]:
            raise InputError([table.problem(i, "row_id", "empty; every row has its point's id")])
        if r["status"] not in STATUSES:
            raise InputError([table.problem(i, "status", f"{r['status'][:40]!r} is not ok or failed")])
    return table


def latest_attempts(rows: list[dict]) -> list[dict]:
    """One row per row id: its latest attempt (rows are appended, so the last one in the file),
    in the order the ids first appear (the plan's order)."""
    latest: dict[str, dict] = {}
    for r in rows:
        latest[r["row_id"]] = r  # a key already there keeps its place
    return list(latest.values())


def campaign_rows(csv_path: Path, campaign: Optional[str] = None) -> list[dict]:
    """The latest attempt of each row of a campaign CSV ([] if there is no file yet); with
    ``campaign``, a CSV holding another campaign's rows is refused (resuming would mix them)."""
    if not csv_path.exists():
        return []
    table = read_campaign_csv(csv_path)
    if campaign is not None:
        for i, r in enumerate(table.rows):
            if r["campaign"] != campaign:
                raise InputError([table.problem(i, "campaign", f"a row of campaign "
                                                f"{r['campaign'][:40]!r}, not {campaign!r}; give "
                                                f"this campaign its own CSV (--out)")])
    return latest_attempts(table.rows)


def existing_rows(csv_path: Path) -> set[str]:
    """The row ids with at least one row in the CSV, failed or not."""
    return {r["row_id"] for r in campaign_rows(csv_path)}


@dataclass
class Plan:
    """What a run of the campaign does with the CSV as it is: the points to measure (new ones,
    and with ``retry_failed`` those whose latest row failed), and what is already there."""

    points: list[dict]
    todo: list[dict]
    retried: set[str]  # row ids in ``todo`` measured before, their latest row failed
    done: int  # points of the plan with a row in the CSV
    failed: int  # of those, points whose latest row failed


def plan(c: Campaign, csv_path: Path, retry_failed: bool = False) -> Plan:
    latest = {r["row_id"]: r["status"] for r in campaign_rows(csv_path, c.name)}
    points = c.points()
    failed = {p["row_id"] for p in points if latest.get(p["row_id"]) == "failed"}
    todo = [p for p in points if p["row_id"] not in latest or (retry_failed and p["row_id"] in failed)]
    return Plan(points, todo, failed if retry_failed else set(),
                sum(p["row_id"] in latest for p in points), len(failed))


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
        if isinstance(c.schedule, TraceJob):  # no model of a trace: its compute, and the rest
            total += (c.iterations + 1) * c.schedule.compute_s + 2
            continue
        it = Iteration.of(c.schedule.scaled(topo.scale.bandwidth)
                          .model_copy(update={"overlap": p["overlap"]}))
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


def replay(c: Campaign, state, topo: Topology, algo: str, overlap: bool,
           workers: Optional[list[str]], timeout: float = 60.0) -> tuple[list, Optional[Schedule]]:
    """One point's job on the twin that is up: the schedule at the topology's scale with the
    point's overlap (returned too, for the model), or the trace, whose dependencies decide what
    overlaps (no schedule then)."""
    from twin.drive.replay import run_trace, run_training
    scale = topo.scale.bandwidth
    if isinstance(c.schedule, TraceJob):
        return run_trace(state, c.schedule, algo, scale, iterations=c.iterations, timeout=timeout,
                         workers=workers), None
    s = c.schedule.scaled(scale).model_copy(update={"overlap": overlap})
    return run_training(state, s, algo, iterations=c.iterations, timeout=timeout, workers=workers), s


@dataclass
class RunContext:
    single_site: dict = field(default_factory=dict)  # overlap -> measured single-site iteration


def run(c: Campaign, csv_path: Path, progress: Callable[[str], None] = lambda s: None,
        on_point: Callable[[int, int], None] = lambda done, total: None,
        retry_failed: bool = False) -> tuple[int, int]:
    """Run every planned point not yet in the CSV, and with ``retry_failed`` every point whose
    latest row failed (a new row is appended; the failed one stays). Returns (rows written,
    rows failed)."""
    from twin.drive.crosstraffic import start_interference
    the_plan = plan(c, csv_path, retry_failed)
    todo = the_plan.todo
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
                res, _ = replay(c, st, one, "ring", ov, ranks)
                ctx.single_site[ov] = statistics.median(r.iteration_s for r in res)
        finally:
            runtime.down()
    groups: dict[tuple, list[dict]] = {}
    for p in todo:
        groups.setdefault(tuple(p[k] for k in TWIN_KEYS), []).append(p)
    n = 0
    for points in groups.values():
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
                again = " (retry)" if p["row_id"] in the_plan.retried else ""
                progress(f"point {n + 1}/{len(todo)}{again}: {describe_point(p)}")
                noise = None
                try:
                    if p["interference"]:
                        a = [w for w in state.workers if w.site == topo.links[0].a]
                        b = [w for w in state.workers if w.site == topo.links[0].b]
                        secs = 3600  # outlasts any job; stopped as soon as the job ends
                        noise = start_interference(a[-1], b[-1], 5399,
                                                   topo.emulated_rate(topo.links[0].rate), secs,
                                                   state.mtu)
                    res, s = replay(c, state, topo, p["algo"], p["overlap"],
                                    job_workers(state, spare), c.timeout)
                    if noise and not noise.running():
                        _, err = noise.client.communicate()
                        raise TwinError(f"the interference flow stopped before the job ended: "
                                        f"{(err or '').strip()[-200:] or 'no error output'}")
                    append_row(csv_path, _row(c, base, topo, p, ctx, res=res, sched=s or c.schedule))
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
         sched: Union[Schedule, TraceJob, None] = None, error: str = "", fault: str = "") -> dict:
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
               loss=p["loss"], algo=p["algo"],  # a trace's dependencies decide its overlap
               overlap="" if isinstance(c.schedule, TraceJob) else p["overlap"],
               controller=p["controller"],
               interference=p["interference"], iterations=c.iterations, dilation=topo.scale.time)
    if res and isinstance(sched, TraceJob):
        row.update(_measured(res, ctx.single_site.get(p["overlap"])),
                   compute_s=round(sched.compute_s, 4),
                   gradient_bytes_emulated=sum(n.emulated_bytes(topo.scale.bandwidth)
                                               for n in sched.collectives))
    elif res and isinstance(sched, Schedule):
        measured = statistics.median(r.iteration_s for r in res)
        it = Iteration.of(sched)
        model = predict(p["algo"], fabric_from_topology(topo), it).iteration
        model_single = predict("ring", fabric_from_topology(single_site(topo)), it).iteration
        row.update(_measured(res, ctx.single_site.get(p["overlap"])),
                   compute_s=round(sched.compute, 4), gradient_bytes_emulated=sum(sched.buckets),
                   model_iteration_s=round(model, 4), model_error=round((measured - model) / model, 4),
                   model_efficiency=round(model_single / model, 4))
    return row


def _measured(res: list, single: Optional[float]) -> dict:
    """The columns every measured row has, from its iterations (medians, the spread, the
    single-site reference's ratio, the host's load)."""
    times = [r.iteration_s for r in res]
    measured = statistics.median(times)
    return dict(iteration_s=round(measured, 4), iteration_s_min=round(min(times), 4),
                iteration_s_max=round(max(times), 4),
                exposed_s=round(statistics.median(r.exposed_s for r in res), 4),
                comm_s=round(statistics.median(r.comm_s for r in res), 4),
                single_site_iteration_s=round(single, 4) if single else "",
                efficiency=round(single / measured, 4) if single else "",
                **host_columns(res[0].host))
