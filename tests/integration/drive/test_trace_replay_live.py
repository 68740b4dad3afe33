"""A 2-rank Chakra trace replayed end to end on ci-2site: ``twin replay`` brings the twin up, runs
every collective type the twin replays across the WAN along the trace's dependencies, writes its
rows and leaves nothing behind."""

from __future__ import annotations

import csv

import pytest

from tests.locations import TOPOS
from twin.cli import main as cli
from twin.spec.chakra_write import collective, compute, write_trace
from twin.spec.topology import load_topology


def rank_trace(path):
    """Forward, a gradient all-reduce beside more compute, then one of every other collective."""
    return write_trace(path, [
        compute(1, 30_000),
        collective(2, "ALL_REDUCE", 400_000_000, [1]),
        compute(3, 20_000, [1]),
        collective(4, "ALL_GATHER", 100_000_000, [2, 3]),
        collective(5, "REDUCE_SCATTER", 100_000_000, [4]),
        collective(6, "BROADCAST", 50_000_000, [5]),
        collective(7, "ALL_TO_ALL", 50_000_000, [6]),
        collective(8, "BARRIER", deps=[7]),
        compute(9, 10_000, [8]),
    ])


def test_a_two_rank_trace_replays_across_the_sites(clean_machine, tmp_path, capsys):
    traces = [str(rank_trace(tmp_path / f"trace.{r}.et")) for r in range(2)]
    out = tmp_path / "replay.csv"
    rc = cli.main(["replay", *traces, "--topology", str(TOPOS / "ci-2site.yaml"),
                   "--workers", "beijing1", "wuhan1", "--iterations", "2", "--csv", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    rows = list(csv.DictReader(out.open()))
    assert [r["iteration"] for r in rows] == ["0", "1"]
    topo = load_topology(TOPOS / "ci-2site.yaml")
    rtt = 2 * topo.link_delay(topo.links[0])
    for r in rows:
        assert (r["ranks"], r["sites"], r["collectives"]) == ("2", "2", "6")
        assert r["git_commit"] and r["scale"] and r["host_bound"] in ("True", "False")
        assert int(r["comm_bytes_emulated"]) == 700_000  # 700 MB real at 1/1000
        assert float(r["compute_s"]) == pytest.approx(0.06)  # 30 + 20 + 10 ms on the longest chain
        # six collectives, each waiting at least once on the other site across the WAN
        assert float(r["comm_s"]) >= 6 * rtt / 2, (r, rtt)
        assert float(r["iteration_s"]) >= float(r["compute_s"]) + float(r["comm_s"]) * 0.5
        assert float(r["exposed_s"]) == pytest.approx(float(r["iteration_s"]) - 0.06, abs=1e-5)
    print(f"replay: {rows}")
