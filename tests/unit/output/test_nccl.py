"""The NCCL-tests table: the backend of every row in a last column, a summary per backend."""

from dataclasses import fields

from twin.drive.benchmark import CollectiveRow
from twin.output.nccl import nccl_table


def row(backend: str, size: int, busbw: float) -> CollectiveRow:
    return CollectiveRow(
        topology="ci-2site", op="allreduce", algo="ring", ranks=4, sites=2, size_bytes=size,
        count=size // 4, type="float", redop="sum", root=-1, time_us=1000.0, algbw_GBps=busbw / 1.5,
        busbw_GBps=busbw, wrong=0, iters=3, conns=1, bottleneck_mbps=100.0,
        busbw_vs_bottleneck=busbw * 8e3 / 100.0, scale="1/1000", mechanism="delayline",
        time_us_min_rank=990.0, time_us_max_rank=1000.0, backend=backend)


def test_the_newer_columns_come_after_the_older_ones():
    assert [f.name for f in fields(CollectiveRow)][-8:] == [
        "backend", "dilation", "host_cpu_saturated_share", "host_bound", "line_late_share",
        "line_late_p99_ms", "generator_cpu_share", "host"]
    assert [f.name for f in fields(CollectiveRow)][:3] == ["topology", "op", "algo"]


def test_both_backends_in_one_table_size_by_size():
    table = nccl_table([row("twin", 4 << 20, 0.010), row("gloo", 4 << 20, 0.008)])
    data = [ln for ln in table.splitlines() if not ln.startswith("#")]
    assert [ln.split()[-1] for ln in data] == ["twin", "gloo"]
    assert "backend twin, gloo" in table
    assert "# Avg bus bandwidth    : 0.010000 (twin)" in table
    assert "# Avg bus bandwidth    : 0.008000 (gloo)" in table
    assert "# Peak busbw gloo 64.0 Mbit/s" in table


def test_one_backend_keeps_nccl_tests_summary_lines():
    table = nccl_table([row("twin", 1 << 20, 0.010)])
    assert "# Avg bus bandwidth    : 0.010000\n" in table + "\n"
    assert "# Peak busbw 80.0 Mbit/s" in table


def test_a_host_bound_row_says_why_in_the_table():
    calm, busy = row("twin", 1 << 20, 0.010), row("twin", 2 << 20, 0.010)
    calm.host = "host had headroom: CPU >= 95% for 0% of the run (median 40%)"
    busy.host_bound, busy.host = True, "host-bound: busiest rank used 97% of a core"
    table = nccl_table([calm, busy])
    assert "# host-bound: busiest rank used 97% of a core at 2097152 B" in table
    assert "headroom" not in table  # only the bound rows are listed once any is


def test_a_table_without_bound_rows_prints_the_largest_rows_headroom():
    calm = row("twin", 1 << 20, 0.010)
    calm.host = "host had headroom: CPU >= 95% for 0% of the run (median 40%)"
    assert "# host had headroom: CPU >= 95% for 0% of the run (median 40%) (largest size)" in \
        nccl_table([calm])
