"""benchmarks/collectives.py: the median run's row per size, and both rings side by side."""

import importlib.util
from dataclasses import asdict, replace

from tests.locations import ROOT
from tests.unit.output.test_nccl import row

spec = importlib.util.spec_from_file_location("collectives_benchmark", ROOT / "benchmarks" / "collectives.py")
assert spec and spec.loader
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_each_size_keeps_the_row_of_its_median_run():
    runs = [[replace(row("twin", s, 0.01), time_us=t) for s, t in ((1, t1), (2, t2))]
            for t1, t2 in ((30.0, 5.0), (10.0, 7.0), (20.0, 6.0))]
    assert [r.time_us for r in bench.median_rows(runs)] == [20.0, 6.0]


def test_both_rings_side_by_side_with_gloo_over_twin():
    rows = [asdict(row("twin", 4 << 20, 0.030)), asdict(row("gloo", 4 << 20, 0.024))]
    table = bench.side_by_side(rows, 3)
    assert "median of 3 runs" in table
    assert table.splitlines()[-1].split() == ["4194304", "240.0", "Mbit/s", "192.0", "Mbit/s", "0.800"]
    assert bench.side_by_side(rows[:1], 3) == ""  # no gloo row, no table
