"""``twin campaign run|plot|report FILE``: run a measurement campaign (resumable: rows already in
its CSV are skipped; with ``--retry-failed`` the points whose latest row failed run again), or
turn its CSV into plots and a report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from twin.cli.console import console

if TYPE_CHECKING:
    from twin.experiments.campaign import Plan


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("campaign", help="run a measurement campaign, or plot/report its CSV")
    p.add_argument("action", choices=["run", "plot", "report"])
    p.add_argument("file", help="campaign YAML (run) or campaign CSV (plot/report)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated duration")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the points whose latest row failed (the failed rows stay)")
    p.add_argument("--out", help="CSV to append to (default results/campaigns/NAME.csv)")
    p.add_argument("-o", "--output", help="plot/report directory (default: next to the CSV)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from twin.experiments import campaign as camp
    from twin.output import campaign_report as rep
    if args.action in ("plot", "report"):
        every = rep.read_attempts(Path(args.file))
        rows = camp.latest_attempts(every)
        out = Path(args.output or Path(args.file).with_suffix(""))
        plots = rep.plot(rows, out)
        md = out / "report.md"
        md.write_text(rep.report(rows, Path(args.file), plots, attempts=len(every)))
        console.print(f"wrote {', '.join(str(p) for p in plots + [md])}")
        return 0
    c = camp.load_campaign(args.file)
    csv_path = Path(args.out or f"results/campaigns/{c.name}.csv")
    plan = camp.plan(c, csv_path, args.retry_failed)
    todo = plan.todo
    est = camp.estimate_seconds(c, todo) if todo else 0
    console.print(f"campaign {c.name}: {len(plan.points)} measurements planned, {plan.done} already in "
                  f"{csv_path}{_failed(plan, args.retry_failed)}, {len(todo)} to run; estimated "
                  f"{est / 60:.1f} min (topology {c.topology.name}, scale "
                  f"{c.scale or c.topology.scale.describe()})")
    if args.dry_run:
        for p in todo:
            again = " (retry: its latest row failed)" if p["row_id"] in plan.retried else ""
            console.print(f"  {p['row_id']}  {camp.describe_point(p)}, repeat {p['repeat']}{again}")
        return 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(c.name, total=len(todo))
        written, failed = camp.run(c, csv_path, progress=lambda m: bar.console.log(m),
                                   on_point=lambda n, total: bar.update(task, completed=n),
                                   retry_failed=args.retry_failed)
    console.print(f"{written} rows written, {failed} failed rows; CSV: {csv_path}")
    from twin.measure.hostload import verdict
    from twin.output import campaign_report
    measured = [r for r in campaign_report.read(csv_path) if r["status"] == "ok"]
    if measured:
        console.print(f"host: {verdict(measured)}")
    return 0


def _failed(plan: "Plan", retry: bool) -> str:
    """' (2 failed, run again)' or ' (2 failed; --retry-failed runs them again)', or ''."""
    if not plan.failed:
        return ""
    return f" ({plan.failed} failed, run again)" if retry else \
        f" ({plan.failed} failed; --retry-failed runs them again)"
