"""Campaign reports: from the latest attempt of every point; a CSV that is no campaign's is one
line."""

import csv

import pytest

from tests.locations import ROOT
from twin.errors import InputError
from twin.experiments.campaign import FIELDS
from twin.output import campaign_report as rep

COMMITTED = ROOT / "results" / "campaigns"


def committed_rows(name: str) -> list[dict]:
    with (COMMITTED / f"{name}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def write(path, rows: list[dict], fields=FIELDS):
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in fields} for r in rows)
    return path


@pytest.mark.parametrize("name", ["fntf-reference", "fntf-40city", "determinism"])
def test_every_committed_campaign_csv_is_reported(name, tmp_path):
    rows = rep.read(COMMITTED / f"{name}.csv")
    assert rows == committed_rows(name)  # one attempt per point: all rows, in order
    text = rep.report(rows, COMMITTED / f"{name}.csv", rep.plot(rows, tmp_path))
    assert text.startswith(f"# Campaign {name}\n")


def test_the_model_errors_median_of_an_even_number_of_rows_lies_between_the_middle_two(tmp_path):
    # the committed 40-city campaign: ring -4.4%, tree -8.2% off the model
    rows = rep.read(COMMITTED / "fntf-40city.csv")
    errs = sorted(abs(float(r["model_error"])) for r in rows)
    assert len(errs) == 2
    text = rep.report(rows, COMMITTED / "fntf-40city.csv", [])
    assert (f"median {(errs[0] + errs[1]) / 2:.1%}, max {errs[1]:.1%}; within 5%: "
            f"{sum(e <= 0.05 for e in errs)}/2.") in text


def test_a_point_that_failed_then_succeeded_counts_as_succeeded(tmp_path):
    ok = committed_rows("fntf-reference")[:2]
    failed = dict(ok[0], status="failed", error="training replay: rank 0: timed out",
                  iteration_s="", model_error="")
    f = write(tmp_path / "c.csv", [failed, ok[1], ok[0]])
    rows = rep.read(f)
    # columns the committed CSV predates read back empty
    assert [r["status"] for r in rows] == ["ok", "ok"] and {k: rows[0][k] for k in ok[0]} == ok[0]
    text = rep.report(rows, f, [], attempts=len(rep.read_attempts(f)))
    assert f"Source: `{f}` (2 rows, 0 failed; 1 earlier attempt of retried points not counted)." \
        in text
    assert "- failed:" not in text


def test_a_point_whose_latest_attempt_failed_is_listed_failed(tmp_path):
    ok = committed_rows("fntf-reference")[:1]
    failed = dict(ok[0], status="failed", error="boom")
    rows = rep.read(write(tmp_path / "c.csv", [ok[0], failed]))
    assert [r["status"] for r in rows] == ["failed"]
    assert "- failed: ring 100.0 km 400Gbit: boom" in rep.report(rows, tmp_path / "c.csv", [])


def test_a_foreign_csv_is_one_line_naming_what_it_lacks(tmp_path):
    foreign = ROOT / "results" / "experiments" / "determinism-fntf-4site.csv"
    with pytest.raises(InputError) as exc:
        rep.read(foreign)
    assert exc.value.problems == [f"{foreign}: line 1: not a campaign CSV: no column row_id, "
                                  "campaign, status, error, sites ..."]


def test_a_measured_row_with_a_value_that_is_no_number_is_one_line(tmp_path):
    row = dict(committed_rows("fntf-reference")[0], distance_km="far")
    f = write(tmp_path / "c.csv", [row])
    with pytest.raises(InputError) as exc:
        rep.read(f)
    assert exc.value.problems == [f"{f}: line 2: distance_km: 'far' is not a number"]


def test_a_failed_row_needs_no_measurements(tmp_path):
    row = dict(committed_rows("fntf-reference")[0], status="failed", error="x", distance_km="",
               iteration_s="")
    assert rep.read(write(tmp_path / "c.csv", [row]))[0]["status"] == "failed"
