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
    a.write_text("controller,line_late_share\ndetpath,0.001\n")
    b.write_text("controller,line_late_share\nbaseline,0.02\ndetpath,\n")
    assert read_rows([a, b]) == [{"controller": "detpath", "line_late_share": "0.001"},
                                 {"controller": "baseline", "line_late_share": "0.02"},
                                 {"controller": "detpath", "line_late_share": ""}]


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
