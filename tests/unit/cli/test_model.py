"""``twin model``: the model layer computes the sweep, the verb prints it and writes its CSV."""

import csv
from dataclasses import asdict

from twin.cli import main as cli
from twin.host.provenance import git_commit
from twin.model.full_scale import Job, fabric, parse_params, sweep
from twin.spec.topology import FIBER_US_PER_KM

SMALL = ["model", "--sites", "2", "--distance", "2000", "--wan-rate", "400Gbit"]
JOB = Job(175e9, "bf16", 64, 16.0, 0.5, 25.0)  # twin model's defaults


def table_rows(out: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("│").split("│")] for line in out.splitlines()
            if line.startswith("│")]


def test_the_printed_rows_are_the_model_layers_rows(capsys):
    assert cli.main(SMALL) == 0
    printed = table_rows(capsys.readouterr().out)
    rows = sweep(JOB, [2], 8, [2000.0], ["400Gbit"], "400Gbit", ["ring", "hier"], 10e-6)
    assert printed == [[str(r.sites), f"{r.distance_km:g}", r.wan_rate, r.algo,
                        "yes" if r.overlap else "no", f"{r.iteration_s:.2f}", f"{r.exposed_s:.2f}",
                        f"{r.efficiency:.1%}"] for r in rows]


def test_the_small_grid_predicts_what_it_always_did(capsys):
    """Numbers of the 2-site, 2,000 km, 400 Gbit/s case (a change of the model shows here)."""
    assert cli.main(SMALL) == 0
    assert table_rows(capsys.readouterr().out) == [
        ["2", "2000", "400Gbit", "ring", "yes", "16.05", "0.05", "99.7%"],
        ["2", "2000", "400Gbit", "ring", "no", "23.88", "7.88", "67.9%"],
        ["2", "2000", "400Gbit", "hier", "yes", "16.02", "0.02", "99.9%"],
        ["2", "2000", "400Gbit", "hier", "no", "20.39", "4.39", "79.5%"],
    ]


def test_the_csv_holds_the_rows_rounded_in_sweep_order(tmp_path, capsys):
    out = tmp_path / "sub" / "model.csv"
    argv = ["model", "--sites", "2", "4", "--distance", "100", "3000", "--wan-rate", "100Gbit",
            "--algo", "ring", "tree", "--params", "7B", "--dtype", "fp32", "--csv", str(out)]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.endswith(f"CSV: {out}\n")
    with out.open(newline="") as fh:
        written = list(csv.DictReader(fh))
    rows = sweep(Job(7e9, "fp32", 64, 16.0, 0.5, 25.0), [2, 4], 8, [100.0, 3000.0], ["100Gbit"],
                 "400Gbit", ["ring", "tree"], 10e-6)
    assert len(written) == 2 * 2 * 2 * 2
    commit = git_commit()
    assert written == [{**{k: str(v) for k, v in asdict(r.rounded()).items()}, "git_commit": commit}
                       for r in rows]
    assert [(w["sites"], w["distance_km"], w["algo"], w["overlap"]) for w in written[:3]] == [
        ("2", "100.0", "ring", "True"), ("2", "100.0", "ring", "False"), ("2", "100.0", "tree", "True")]
    assert list(written[0]) == ["params", "dtype", "sites", "per_site", "distance_km", "wan_rate",
                                "lan_rate", "algo", "overlap", "iteration_s", "exposed_s",
                                "single_site_s", "efficiency", "git_commit"]


def test_a_wan_step_pays_the_fiber_and_the_lan_step():
    f = fabric(4, 8, "400Gbit", "1.2Tbit", 2000, 10e-6)
    assert (f.sites, f.per_site, f.lan_bps, f.wan_bps) == (4, 8, 400e9, 1.2e12)
    assert f.alpha_wan - f.alpha_lan == 2000 * FIBER_US_PER_KM * 1e-6


def test_the_gradient_is_the_model_parallel_ranks_share():
    assert JOB.gradient_bytes == 175e9 * 2 / 64
    it = JOB.iteration(overlap=False)
    assert (it.forward, it.optimizer, it.overlap) == (16 / 3, 0.5, False)
    assert sum(it.buckets) == JOB.gradient_bytes and max(it.buckets) == 25 * 2**20


def test_parameter_counts_and_their_refusal(capsys):
    assert (parse_params("175B"), parse_params("350m"), parse_params("1.3e9")) == (175e9, 350e6, 1.3e9)
    assert cli.main(["model", "--params", "big"]) == 1
    assert capsys.readouterr().err == (
        "twin: model: 'big' is not a parameter count; use e.g. 175B, 350M or 1.3e9\n")
    assert cli.main(["model", "--wan-rate", "fast"]) == 1
    assert capsys.readouterr().err == "twin: model: cannot read rate 'fast'\n"
