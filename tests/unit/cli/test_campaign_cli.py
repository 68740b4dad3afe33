"""``twin campaign``: the plan printed before anything starts, --retry-failed, bad CSVs."""

from tests.locations import ROOT
from twin.cli import main as cli
from twin.experiments.campaign import append_row, load_campaign

CAMPAIGN = f"""name: t
topology: {ROOT}/topologies/ci-2site.yaml
schedule: {{forward: 10ms, backward: 20ms, buckets: [1M]}}
iterations: 1
sweep:
  algo: [ring, hier]
  overlap: [true, false]
"""


def setup(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(CAMPAIGN)
    c = load_campaign(f)
    out = tmp_path / "t.csv"
    for p, status in zip(c.points(), ["ok", "failed", "ok"]):
        append_row(out, {"row_id": p["row_id"], "campaign": "t", "status": status})
    return f, c, out


def listed(text: str) -> list[str]:
    """The points a dry run lists: '  ROW_ID  PARAMETERS, repeat N'."""
    return [line for line in text.splitlines() if line.startswith("  ")]


def test_a_dry_run_counts_the_failed_rows_and_says_how_to_retry_them(tmp_path, capsys):
    f, c, out = setup(tmp_path)
    assert cli.main(["campaign", "run", str(f), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"4 measurements planned, 3 already in {out} (1 failed; --retry-failed runs them " \
           "again), 1 to run;" in " ".join(text.split())
    assert [line.split()[0] for line in listed(text)] == [c.points()[3]["row_id"]]


def test_a_dry_run_with_retry_failed_shows_what_would_be_retried(tmp_path, capsys):
    f, c, out = setup(tmp_path)
    assert cli.main(["campaign", "run", str(f), "--out", str(out), "--dry-run",
                     "--retry-failed"]) == 0
    text = capsys.readouterr().out
    assert "3 already in" in text and "(1 failed, run again), 2 to run;" in " ".join(text.split())
    first, second = listed(text)
    assert first.split()[0] == c.points()[1]["row_id"]
    assert first.endswith("repeat 0 (retry: its latest row failed)")
    assert second.split()[0] == c.points()[3]["row_id"] and "retry" not in second


def test_resuming_into_another_campaigns_csv_is_refused_before_anything_starts(tmp_path, capsys):
    f, _, _ = setup(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("row_id,campaign,status\nabc,fntf-reference,ok\n")
    assert cli.main(["campaign", "run", str(f), "--out", str(other)]) == 2
    assert capsys.readouterr().err == (f"{other}: line 2: campaign: a row of campaign "
                                       "'fntf-reference', not 't'; give this campaign its own "
                                       "CSV (--out)\n")


def test_a_report_of_a_foreign_csv_is_one_line(tmp_path, capsys):
    foreign = tmp_path / "f.csv"
    foreign.write_text("x,y\n1,2\n")
    assert cli.main(["campaign", "report", str(foreign)]) == 2
    assert capsys.readouterr().err == (f"{foreign}: line 1: not a campaign CSV: no column row_id, "
                                       "campaign, status, error, topology ...\n")
