"""Grouping probe repeats by the emulator's own lateness (twin.measure.noise)."""

from pathlib import Path

from twin.measure.noise import bands, describe, machine_warning, read_rows


def probe(share, p99, phase="interference", controller="detpath"):
    return {"controller": controller, "metric": "probe (reserved class)", "phase": phase,
            "line_late_share": str(share), "owd_p99_ms": str(p99), "propagation_ms": "6.8"}


def test_repeats_are_grouped_by_how_late_the_line_was():
    rows = [probe(0.001, 7.5), probe(0.002, 7.7, "alone"), probe(0.004, 8.2), probe(0.004, 7.6),
            probe(0.02, 12.0), probe(0.001, 30.0, controller="baseline"),
            {"controller": "detpath", "metric": "reserved channel", "line_late_share": ""}]
    quiet, mid, loud = bands(rows)
    assert (quiet.repeats, quiet.within_target) == (2, 2)
    assert quiet.phases == "alone 1, interference 1"
    assert (mid.repeats, mid.within_target) == (2, 1) and mid.p99_over_propagation_max_ms == 1.4
    assert (loud.repeats, loud.within_target) == (1, 0)
    assert loud.p99_over_propagation_median_ms == 5.2


def test_rows_of_several_files_are_read_in_order(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("controller,metric,line_late_share,phase,owd_p99_ms,propagation_ms\n"
                 "detpath,probe,0.001,alone,7.5,6.8\n")
    b.write_text("controller,metric\nbaseline,probe\n")
    assert read_rows([a, b]) == [{"controller": "detpath", "metric": "probe", "phase": "alone",
                                  "line_late_share": "0.001", "owd_p99_ms": "7.5",
                                  "propagation_ms": "6.8"},
                                 {"controller": "baseline", "metric": "probe"}]


def test_files_without_line_lateness_give_no_band():
    assert bands([{"controller": "detpath", "metric": "probe (reserved class)", "owd_p99_ms": "7.5"}]) == []


def test_a_band_is_described_in_one_line():
    (quiet,) = bands([probe(0.001, 7.5), probe(0.002, 8.0, "alone")], target_ms=1.0)
    assert describe(quiet) == ("line late 0.0%-0.3%: 2 repeats, 1 with p99 within 1 ms of propagation; "
                               "excess median +0.95 ms, max +1.20 ms (alone 1, interference 1)")


def test_the_experiment_warns_only_when_the_emulator_was_late():
    assert machine_warning([0.001, None, 0.005], Path("x.csv")) == ""
    warning = machine_warning([0.001, None, 0.007, 0.02], Path("x.csv"))
    assert warning.startswith("in 2 of 3 probe runs") and "(twin experiment noise x.csv)" in warning


def test_a_csv_that_is_no_determinism_csv_is_one_line(tmp_path):
    import pytest

    from twin.errors import InputError
    cases = {
        "campaign.csv": ("row_id,status\nx,ok\n", "line 1: not a determinism CSV: no column "
                                                   "controller, metric"),
        "half.csv": ("controller,metric,line_late_share\ndetpath,probe,0.1\n",
                     "line 1: not a determinism CSV: no column phase, owd_p99_ms, propagation_ms"),
        "text.csv": ("controller,metric,line_late_share,phase,owd_p99_ms,propagation_ms\n"
                     "detpath,probe (reserved class),late,alone,7.5,6.8\n",
                     "line 2: line_late_share: 'late' is not a number"),
        "nan.csv": ("controller,metric,line_late_share,phase,owd_p99_ms,propagation_ms\n"
                    "detpath,probe (reserved class),0.001,alone,nan,6.8\n",
                    "line 2: owd_p99_ms: 'nan' is not a number"),
        "ragged.csv": ("controller,metric\ndetpath\n", "line 2: 1 fields, the header has 2"),
    }
    for name, (text, reason) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        with pytest.raises(InputError) as exc:
            read_rows([f])
        assert exc.value.problems == [f"{f}: {reason}"]


def test_the_committed_determinism_csvs_are_read():
    from tests.locations import ROOT
    runs = sorted((ROOT / "results" / "experiments" / "runs").glob("determinism-fntf-4site-???????.csv"))
    assert runs and bands(read_rows(runs))
