"""``twin campaign run|plot|report FILE``: run a measurement campaign (resumable: rows already in
its CSV are skipped), or turn its CSV into plots and a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from twin.cli.console import console


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("campaign", help="run a measurement campaign, or plot/report its CSV")
    p.add_argument("action", choices=["run", "plot", "report"])
    p.add_argument("file", help="campaign YAML (run) or campaign CSV (plot/report)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated duration")
    p.add_argument("--out", help="CSV to append to (default results/campaigns/NAME.csv)")
    p.add_argument("-o", "--output", help="plot/report directory (default: next to the CSV)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from twin.experiments import campaign as camp
    from twin.output import campaign_report as rep
    if args.action in ("plot", "report"):
        rows = rep.read(Path(args.file))
        out = Path(args.output or Path(args.file).with_suffix(""))
        plots = rep.plot(rows, out)
        md = out / "report.md"
        md.write_text(rep.report(rows, Path(args.file), plots))
        console.print(f"wrote {', '.join(str(p) for p in plots + [md])}")
        return 0
    c = camp.load_campaign(args.file)
    csv_path = Path(args.out or f"results/campaigns/{c.name}.csv")
    done = camp.existing_rows(csv_path)
    todo = [p for p in c.points() if p["row_id"] not in done]
    est = camp.estimate_seconds(c, todo) if todo else 0
    console.print(f"campaign {c.name}: {len(c.points())} measurements planned, {len(done)} already in "
                  f"{csv_path}, {len(todo)} to run; estimated {est / 60:.1f} min "
                  f"(topology {c.topology.name}, scale {c.scale or c.topology.scale.describe()})")
    if args.dry_run:
        for p in todo:
            console.print(f"  {p['row_id']}  {camp.describe_point(p)}, repeat {p['repeat']}")
        return 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(c.name, total=len(todo))
        written, failed = camp.run(c, csv_path, progress=lambda m: bar.console.log(m),
                                   on_point=lambda n, total: bar.update(task, completed=n))
    console.print(f"{written} rows written, {failed} failed rows; CSV: {csv_path}")
    return 0
