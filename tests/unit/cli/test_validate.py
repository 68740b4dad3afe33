"""``twin validate``: every file read, one line per problem."""

import os
import subprocess
import sys
import time

from tests.locations import ROOT, TOPOS
from twin.cli import main as cli


def test_a_good_file_is_summarized(capsys):
    assert cli.main(["validate", str(TOPOS / "ci-2site.yaml")]) == 0
    assert capsys.readouterr().out == f"{TOPOS / 'ci-2site.yaml'}: ok (2 sites, 4 workers, 1 links, span 1053 km)\n"


def test_a_bad_file_is_one_line_naming_file_field_and_reason(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nsites: []\n")
    assert cli.main(["validate", str(bad), str(TOPOS / "ci-2site.yaml")]) == 2
    out = capsys.readouterr()
    assert out.err == f"{bad}: line 2: sites: List should have at least 1 item after validation, not 0\n"
    assert out.out.startswith(f"{TOPOS / 'ci-2site.yaml'}: ok (")


CI = (TOPOS / "ci-2site.yaml").read_text()
LINK = "{a: beijing, b: wuhan, rate: 400Gbit}"
BAD = {  # file name: (contents, the one line after the file's name)
    "not-utf8.yaml": (CI.replace("Wuhan", "W\xfchan").encode("latin-1"),
                      "not UTF-8 text (byte 223 cannot be decoded)"),
    "deep.yaml": ("name: " + "[" * 10_000 + "]" * 10_000 + "\n",
                  "line 1: nested deeper than 20 levels of lists and mappings"),
    "twice.yaml": (CI.replace("    workers: 2\n", "    workers: 2\n    workers: 3\n", 1),
                   "line 12: sites[0:beijing].workers: given twice (lines 12 and 13); a key may "
                   "appear once"),
    "huge-rate.yaml": (CI.replace(LINK, LINK.replace("400Gbit", "1e999Gbit")),
                       "line 21: links[0:beijing-wuhan].rate: rate '1e999Gbit' is above 1000Tbit, "
                       "the largest the twin takes"),
    "tiny-rate.yaml": (CI.replace(LINK, LINK.replace("400Gbit", "1e-7bit")),
                       "line 21: links[0:beijing-wuhan].rate: rate '1e-7bit' is below 1Kbit, the "
                       "smallest the twin takes"),
    "nan-delay.yaml": (CI.replace(LINK, LINK.replace("}", ", delay: .nan}")),
                       "line 21: links[0:beijing-wuhan].delay: time nan is not a number"),
    "campaign.yaml": (f"name: c\ntopology: {TOPOS / 'ci-2site.yaml'}\n"
                      "schedule: {forward: 1s, backward: 1s, buckets: [1M]}\n"
                      "sweep:\n  wan_rate: [400Gbit, 1e999Gbit]\n",
                      "line 5: sweep.wan_rate[1]: rate '1e999Gbit' is above 1000Tbit, the largest "
                      "the twin takes"),
    "schedule.yaml": ("forward: 1s\nbackward: 1s\nbuckets: [1M, inf]\n",
                      "line 3: buckets: bucket 1: cannot read size 'inf'"),
}


def twin_validate(*files) -> subprocess.CompletedProcess:
    """This checkout's CLI in a process of its own, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "twin.cli.main", "validate", *map(str, files)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_bad_files_of_every_kind_are_one_line_each(tmp_path):
    files = []
    for name, (text, _) in BAD.items():
        files.append(tmp_path / name)
        files[-1].write_bytes(text if isinstance(text, bytes) else text.encode())
    proc = twin_validate(*files)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"{tmp_path / name}: {line}" for name, (_, line) in BAD.items()]


def test_a_file_of_megabytes_is_refused_within_seconds(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: big\nsites:\n" + "  - {name: s, lat: 1, lon: 1, workers: 1}\n" * 100_000)
    assert big.stat().st_size > 4 * 2**20
    t0 = time.monotonic()
    proc = twin_validate(big)
    took = time.monotonic() - t0
    assert proc.stderr == f"{big}: larger than 256 KiB, the most the twin reads from such a file\n"
    assert took < 60, f"{took:.1f} s"  # ~0.6 s here, of which Python's start is most


def test_reservations_that_cannot_be_admitted_are_refused_at_once(tmp_path, capsys):
    """validate admits the reservations as ``twin up --controller detpath`` would: one line
    naming file, line, reservation and reason, in seconds even on the 40-city mesh."""
    f = tmp_path / "huge.yaml"
    f.write_text((TOPOS / "fntf-40city.yaml").read_text()
                 + "reservations:\n- {name: huge, a: urumqi, b: harbin, rate: 1.1Tbit}\n")
    line = len(f.read_text().splitlines())
    t0 = time.monotonic()
    assert cli.main(["validate", str(f)]) == 2
    took = time.monotonic() - t0
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.splitlines()) == 1, out
    assert out.err.startswith(f"{f}: line {line}: reservations[0:huge].rate: reservation 'huge' "
                              "(1100 Mbit/s urumqi->harbin) refused: link ")
    assert "every path from urumqi to harbin has a link with no more" in out.err
    assert took < 5, f"{took:.1f} s"


def test_reservations_that_fit_alone_but_not_together_are_refused(tmp_path, capsys):
    f = tmp_path / "two.yaml"
    f.write_text(CI.replace("reservations:\n", "reservations:\n"
                            "  - {name: first, a: beijing, b: wuhan, rate: 300Gbit, "
                            "tcp_ports: [5201], udp_ports: [7300]}\n", 1))
    assert cli.main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{f}: line 26: reservations[1:job].rate: reservation 'job' (200 Mbit/s "
                          "beijing->wuhan) refused: link beijing-wuhan has 60 Mbit/s reservable "
                          "left"), err


def test_a_campaign_file_is_validated_as_a_campaign(capsys):
    f = ROOT / "campaigns" / "determinism.yaml"
    assert cli.main(["validate", str(f)]) == 0
    assert capsys.readouterr().out == f"{f}: ok (campaign determinism: 12 points on ci-2site)\n"


def test_a_campaign_whose_topology_is_bad_names_both(tmp_path, capsys):
    bad = tmp_path / "t.yaml"
    bad.write_text(CI.replace(LINK, LINK.replace("400Gbit", "1e-7bit")))
    c = tmp_path / "c.yaml"
    c.write_text("name: c\ntopology: t.yaml\nschedule: {forward: 1s, backward: 1s, buckets: [1M]}\n"
                 "sweep: {algo: [ring]}\n")
    assert cli.main(["validate", str(c)]) == 2
    assert capsys.readouterr().err == (f"{c}: line 2: topology: {bad}: line 21: "
                                       "links[0:beijing-wuhan].rate: rate '1e-7bit' is below 1Kbit, "
                                       "the smallest the twin takes\n")


def test_a_schedule_file_is_validated_as_a_schedule(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("model: {params: 7e9, compute: 16s}\n")
    assert cli.main(["validate", str(f)]) == 0
    assert capsys.readouterr().out == f"{f}: ok (schedule: 535 buckets, 13,351.4 MiB of gradient)\n"
