"""``twin validate``: read topology, campaign and schedule files and Chakra traces as the verbs
that use them would, without starting anything."""

from __future__ import annotations

import argparse

from twin.cli.console import console, error_line
from twin.errors import InputError
from twin.spec.loading import Document

CAMPAIGN_KEYS = frozenset({"sweep", "topology"})  # fields only a campaign has
SCHEDULE_KEYS = frozenset({"forward", "backward", "buckets", "model"})  # and a schedule
TRACE_SUFFIXES = (".et", ".et.gz")  # Chakra traces: binary, one rank each


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("validate", help="validate topology, campaign and schedule files "
                                               "and Chakra traces (.et)")
    p.add_argument("files", nargs="+")
    p.set_defaults(run=run)


def file_kind(doc: Document) -> str:
    """Which file this is, from its top-level fields: a campaign names its topology and sweep, a
    schedule its phases, buckets or model; anything else is read as a topology, so
    a file that is none of them gets the topology's problems."""
    keys = set(doc.data) if isinstance(doc.data, dict) else set()
    if keys & CAMPAIGN_KEYS:
        return "campaign"
    if keys & SCHEDULE_KEYS and "sites" not in keys:
        return "schedule"
    return "topology"


def summary(doc: Document) -> str:
    """What the file describes, validated as its kind (InputError otherwise). A topology's
    reservations are admitted too, as detpath would admit them at bring-up: a file whose
    reservations do not fit is refused here, not minutes into ``twin up``."""
    kind = file_kind(doc)
    if kind == "campaign":
        from twin.spec.campaign import campaign_of
        spec, topo = campaign_of(doc)
        points = spec.sweep.size() * spec.repeats
        return f"ok (campaign {spec.name}: {points} points on {topo.name})"
    if kind == "schedule":
        from twin.spec.schedule import schedule_of
        schedule = schedule_of(doc)
        return (f"ok (schedule: {len(schedule.buckets)} buckets, "
                f"{sum(schedule.buckets) / 2**20:,.1f} MiB of gradient)")
    from twin.plan.reservations import ReservationError, admit_reservations
    from twin.spec.topology import topology_of
    topo = topology_of(doc)
    try:  # as `twin up --controller detpath` would: a file it refuses is not ok
        admit_reservations(topo, doc.source)
    except ReservationError as exc:
        raise InputError([doc.problem(exc.loc, exc.reason)]) from None
    return (f"ok ({len(topo.sites)} sites, {sum(s.workers for s in topo.sites)} workers, "
            f"{len(topo.links)} links, span {topo.span_km():.0f} km)")


def trace_summary(path: str) -> str:
    """What one rank's Chakra trace replays, checked as ``twin replay`` checks it."""
    from twin.spec.chakra import read_trace
    trace = read_trace(path)
    colls = trace.collectives
    return (f"ok (Chakra trace: {len(trace.nodes)} nodes, {len(colls)} collectives of "
            f"{sum(n.size for n in colls) / 2**20:,.1f} MiB, {trace.compute_s:.3f} s of compute "
            f"on its longest chain)")


def run(args: argparse.Namespace) -> int:
    """Every file is read, so one run lists the problems of all of them; a bad file exits 2, as
    bad input does for every verb."""
    from twin.spec.loading import read_document
    bad = 0
    for f in args.files:
        try:
            if f.endswith(TRACE_SUFFIXES):
                console.print(f"{f}: {trace_summary(f)}")
                continue
            console.print(f"{f}: {summary(read_document(f))}")
        except InputError as exc:
            bad += 1
            for line in exc.problems:
                error_line(line)
    return 2 if bad else 0
