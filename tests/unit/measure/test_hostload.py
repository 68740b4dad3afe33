"""The host-bound verdict: each of the three witnesses flags a run on its own, and the printed
line says which and by how much."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from twin.measure.hostload import (
    GENERATOR_BOUND,
    HostLoad,
    LoadSummary,
    busy_share,
    cpu_times,
    host_columns,
    summarize,
    verdict,
)


def hist(on_time: int, late_1ms: int) -> dict:
    """A delay line's histogram: frames < 1 us late, and frames 0.5-1 ms late (bucket 10)."""
    h = [0] * 28
    h[0], h[10] = on_time, late_1ms
    return {"late_hist_pow2_us": h}


def test_cpu_times_count_everything_but_idle_and_iowait():
    busy, total = cpu_times("cpu  10 2 3 80 5 0 0 0 0 0\n")
    assert (busy, total) == (15, 100)
    assert busy_share((0, 0), (15, 100)) == 0.15 and busy_share((1, 1), (1, 1)) is None


def test_a_run_saturated_for_more_than_a_tenth_of_its_samples_is_host_bound():
    assert not summarize([0.5] * 9 + [0.99]).host_bound  # 10%: not more than a tenth
    bound = summarize([0.5] * 8 + [0.99] * 2)
    assert bound.host_bound and bound.describe().startswith("host-bound: CPU >= 95% for 20%")


def test_late_delay_lines_flag_a_run_the_cpus_did_not():
    calm = summarize([0.3] * 10, hist(990, 0), hist(1980, 20))  # 20 of 1,010 new frames late
    assert calm.line_frames == 1010 and calm.line_late_share is not None
    assert calm.host_bound and "delay lines released 2.0% of frames >= 0.512 ms late" in calm.describe()
    fine = summarize([0.3] * 10, hist(990, 0), hist(1980, 5))
    assert not fine.host_bound and "delay lines 0.5% of 995 frames" in fine.describe()


def test_no_delay_line_no_line_figures():
    s = summarize([0.3] * 10)
    assert s.line_late_share is None and "delay lines" not in s.describe()
    assert host_columns(s)["line_late_share"] is None


def test_a_rank_that_used_a_whole_core_flags_its_row():
    s = summarize([0.3] * 10).with_generator([0.4, GENERATOR_BOUND + 0.05])
    assert s.generator_cpu_share == round(GENERATOR_BOUND + 0.05, 3)
    assert s.host_bound and "busiest rank used 95% of a core" in s.describe()
    assert not summarize([0.3] * 10).with_generator([0.5]).host_bound
    assert summarize([0.3]).with_generator([]) == summarize([0.3])


def test_verdict_over_rows_and_csv_dicts():
    calm = host_columns(summarize([0.3] * 10))
    bound = host_columns(summarize([0.99] * 10))
    assert verdict([calm, calm]).startswith("the host had headroom in all 2 rows")
    assert verdict([calm, {k: str(v) for k, v in bound.items()}]).startswith("1 of 2 rows host-bound")
    assert verdict([LoadSummary(1, 0.0, 0.1)]).startswith("the host had headroom in all 1 rows")


def test_rows_that_predate_the_host_columns_are_never_called_headroom():
    calm = {k: str(v) for k, v in host_columns(summarize([0.3] * 10)).items()}
    old = {"iteration_s": "0.687"}  # a CSV row written before the host columns existed
    assert verdict([old, dict(old, host_bound="")]) == "not recorded in any of the 2 rows"
    assert verdict([calm, old]).startswith("the host had headroom in all 1 rows that record it")
    assert verdict([calm, old]).endswith("; not recorded in 1 of 2 rows")


def test_sampling_sees_a_saturating_load(tmp_path):
    """Real samples of this machine's /proc/stat while every CPU spins: the flag appears."""
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(len(os.sched_getaffinity(0)))]
    try:
        time.sleep(0.3)
        with HostLoad(interval_s=0.05) as load:
            time.sleep(1.0)
    finally:
        for p in spin:
            p.kill()
            p.wait()
    s = load.summary
    assert s.samples >= 10 and s.median_busy > 0.9
    assert s.host_bound, s.describe()


def test_only_the_samples_within_the_window_count():
    load = HostLoad()
    load.shares = [1.0, 1.0, 0.2, 0.3, 0.99, 1.0]
    load.stamps = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0]
    inside = load.summary_between(2.5, 5.0)
    assert inside.samples == 3 and round(inside.saturated_share, 3) == 0.333 and inside.host_bound
    assert not load.summary_between(2.5, 4.5).host_bound
    assert load.summary.samples == 6
    assert load.summary_between(20.0, 30.0).samples == 0
