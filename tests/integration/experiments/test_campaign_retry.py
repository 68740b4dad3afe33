"""A campaign on ci-2site whose point really fails (its ranks' deadline, 1 ms, is shorter than
one round trip of the 1,368 km link), then resumed with --retry-failed: the failed attempt stays
in the CSV, the point is measured again, and the report counts it by its latest attempt."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from tests.locations import ROOT, TOPOS
from twin.output import campaign_report

TWIN = [sys.executable, "-m", "twin.cli.main"]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def campaign(tmp_path, name: str, extra: str, algos: str):
    f = tmp_path / name
    f.write_text(f"""name: retry
topology: {TOPOS / 'ci-2site.yaml'}
scale: 1/4000
schedule: {{forward: 20ms, backward: 40ms, buckets: [100M, 100M]}}
iterations: 1
{extra}sweep:
  algo: [{algos}]
""")
    return f


def twin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TWIN, *args], capture_output=True, text=True, env=ENV, timeout=600)


def rows(path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_failed_point_is_retried_and_its_failed_attempt_kept(clean_machine, tmp_path):
    out = tmp_path / "retry.csv"
    short = campaign(tmp_path, "short.yaml", "timeout: 1ms\n", "ring")
    first = twin("campaign", "run", str(short), "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "0 rows written, 1 failed rows" in first.stdout
    (failed,) = rows(out)
    assert failed["status"] == "failed" and failed["algo"] == "ring"
    assert failed["error"].startswith("training replay: rank ")

    fixed = campaign(tmp_path, "fixed.yaml", "", "ring, hier")
    dry = twin("campaign", "run", str(fixed), "--out", str(out), "--dry-run", "--retry-failed")
    assert dry.returncode == 0, dry.stderr
    listed = [line for line in dry.stdout.splitlines() if line.startswith("  ")]
    assert [line.split()[0] for line in listed][0] == failed["row_id"]
    assert listed[0].endswith("(retry: its latest row failed)") and "algo=hier" in listed[1]
    assert rows(out) == [failed]  # a dry run writes nothing

    second = twin("campaign", "run", str(fixed), "--out", str(out), "--retry-failed")
    assert second.returncode == 0, second.stderr
    assert "2 rows written, 0 failed rows" in second.stdout
    every = rows(out)
    assert [(r["row_id"] == failed["row_id"], r["algo"], r["status"]) for r in every] == [
        (True, "ring", "failed"), (True, "ring", "ok"), (False, "hier", "ok")]
    assert every[0] == failed  # the failed attempt stays as it was
    assert float(every[1]["iteration_s"]) > 0.06  # measured: at least its compute

    latest = campaign_report.read(out)
    assert [(r["algo"], r["status"]) for r in latest] == [("ring", "ok"), ("hier", "ok")]
    report = twin("campaign", "report", str(out), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "(2 rows, 0 failed; 1 earlier attempt of retried points not counted)" in text

    again = twin("campaign", "run", str(fixed), "--out", str(out), "--retry-failed", "--dry-run")
    assert "0 to run" in " ".join(again.stdout.split())
