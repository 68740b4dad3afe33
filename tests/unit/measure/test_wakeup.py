"""Timer wake-up survey: the pure part (stalls on every CPU at once) and one real short run."""

import os

from twin.measure.wakeup import describe, measure, simultaneous, survey


def test_a_stall_counts_as_simultaneous_only_if_every_cpu_was_in_one_at_that_moment():
    cpu0 = [(100, 200), (500, 600), (900, 950)]
    cpu1 = [(150, 250), (610, 700), (940, 1000)]
    assert simultaneous([cpu0, cpu1]) == 2  # 100-200 with 150-250, 900-950 with 940-1000
    assert simultaneous([cpu0, []]) == 0
    assert simultaneous([cpu0]) == 3  # one CPU: each of its stalls
    assert simultaneous([]) == 0


def test_survey_measures_every_cpu_for_real():
    cpus = os.sched_getaffinity(0)
    policy = os.sched_getscheduler(0)
    s = survey(0.3)
    assert s["cpus"] == len(cpus) and 0 <= s["p999_ms"] <= s["max_ms"]
    assert s["all_cpus_stalled"] <= s["stalls"]
    assert "real-time sleeps" in describe(s)
    # each CPU was measured in a process of its own: this one keeps its CPUs and its scheduling
    assert os.sched_getaffinity(0) == cpus and os.sched_getscheduler(0) == policy


def test_one_cpu_sleeps_a_millisecond_at_a_time():
    pid = os.fork()
    if pid == 0:  # measure() pins and may raise the priority of the process it runs in
        r = measure(min(os.sched_getaffinity(0)), 0.2)
        os._exit(0 if 20 <= r["sleeps"] <= 200 and r["p99_ms"] <= r["max_ms"]
                 and all(b > a for a, b in r["stalls"]) else 1)
    _, status = os.waitpid(pid, 0)  # this child's status, not that of another the run left
    assert os.waitstatus_to_exitcode(status) == 0
