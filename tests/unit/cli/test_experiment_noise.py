"""``twin experiment noise``: determinism CSVs in, one line per lateness band out."""

import csv

from twin.cli import main as cli

HEADER = "controller,repeat,phase,metric,owd_p99_ms,propagation_ms,line_late_share\n"
ROWS = """detpath,0,alone,probe (reserved class),7.5,6.8,0.001
detpath,0,interference,probe (reserved class),7.7,6.8,0.002
detpath,1,interference,probe (reserved class),8.2,6.8,0.004
detpath,1,alone,probe (reserved class),7.6,6.8,0.004
detpath,2,interference,probe (reserved class),12.0,6.8,0.02
baseline,0,interference,probe (reserved class),30.0,6.8,0.001
detpath,0,alone,reserved channel,,,
"""


def test_bands_are_printed_and_written(tmp_path, capsys):
    first, second = tmp_path / "run1.csv", tmp_path / "run2.csv"
    lines = ROWS.splitlines(keepends=True)
    first.write_text(HEADER + "".join(lines[:3]))
    second.write_text(HEADER + "".join(lines[3:]))
    out = tmp_path / "bands.csv"
    assert cli.main(["experiment", "noise", str(first), str(second), "--target-ms", "1.2",
                     "--out", str(out)]) == 0
    assert capsys.readouterr().out == (
        "line late 0.0%-0.3%: 2 repeats, 2 with p99 within 1.2 ms of propagation; excess median "
        "+0.80 ms, max +0.90 ms (alone 1, interference 1)\n"
        "line late 0.3%-0.6%: 2 repeats, 1 with p99 within 1.2 ms of propagation; excess median "
        "+1.10 ms, max +1.40 ms (alone 1, interference 1)\n"
        "line late 0.6%-100.0%: 1 repeats, 0 with p99 within 1.2 ms of propagation; excess median "
        "+5.20 ms, max +5.20 ms (interference 1)\n")
    with out.open(newline="") as fh:
        bands = list(csv.DictReader(fh))
    assert [(b["line_late_share_from"], b["repeats"], b["within_target"], b["target_ms"]) for b in bands] == [
        ("0.0", "2", "2", "1.2"), ("0.003", "2", "1", "1.2"), ("0.006", "1", "0", "1.2")]


def test_files_without_line_lateness_are_refused(tmp_path, capsys):
    old = tmp_path / "old.csv"
    old.write_text("controller,metric,owd_p99_ms\ndetpath,probe (reserved class),7.5\n")
    assert cli.main(["experiment", "noise", str(old)]) == 1
    assert capsys.readouterr().err == "no detpath probe rows with line lateness in these files\n"


def test_a_missing_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert cli.main(["experiment", "noise", str(missing)]) == 2
    assert capsys.readouterr().err == f"{missing}: cannot read file: No such file or directory\n"
