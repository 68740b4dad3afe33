"""Grouping probe repeats by the emulator's own lateness (twin.noise)."""

from pathlib import Path

from twin.measure.noise import bands, machine_warning, main


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


def test_files_without_line_lateness_are_refused(tmp_path):
    f = tmp_path / "old.csv"
    f.write_text("controller,metric,owd_p99_ms\ndetpath,probe (reserved class),7.5\n")
    assert main([str(f)]) == 1


def test_the_experiment_warns_only_when_the_emulator_was_late():
    assert machine_warning([0.001, None, 0.005], Path("x.csv")) == ""
    warning = machine_warning([0.001, None, 0.007, 0.02], Path("x.csv"))
    assert warning.startswith("in 2 of 3 probe runs") and "twin.measure.noise x.csv" in warning
