"""Timer wake-up survey: the pure part (stalls on every CPU at once) and one real short run."""

from twin.measure.wakeup import describe, simultaneous, survey


def test_a_stall_counts_as_simultaneous_only_if_every_cpu_was_in_one_at_that_moment():
    cpu0 = [(100, 200), (500, 600), (900, 950)]
    cpu1 = [(150, 250), (610, 700), (940, 1000)]
    assert simultaneous([cpu0, cpu1]) == 2  # 100-200 with 150-250, 900-950 with 940-1000
    assert simultaneous([cpu0, []]) == 0
    assert simultaneous([cpu0]) == 3  # one CPU: each of its stalls
    assert simultaneous([]) == 0


def test_survey_measures_every_cpu_for_real():
    s = survey(0.3)
    assert s["cpus"] >= 1 and 0 <= s["p999_ms"] <= s["max_ms"]
    assert s["all_cpus_stalled"] <= s["stalls"]
    assert "real-time sleeps" in describe(s)
