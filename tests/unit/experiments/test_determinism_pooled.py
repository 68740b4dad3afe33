"""The experiment's pooled probe summary: every repeat's packets together, per controller and phase."""

import pytest

from twin.experiments.determinism import DeterminismRow, ProbeSamples, _probe_fields, pooled


def row(controller, phase, repeat, metric="probe (reserved class)", p99=7.5):
    return DeterminismRow(
        topology="fntf-4site", controller=controller, repeat=repeat, phase=phase, metric=metric,
        src="beijing1", dst="shanghai1", offered_mbps=0.0, goodput_mbps=0.0, share_of_offered=0.0,
        owd_min_ms=6.9, owd_p50_ms=7.0, owd_p99_ms=p99, owd_p999_ms=8.0, owd_max_ms=9.0,
        pdv_ms=1.1, loss=0.0, reordered=0, gap_ms=0.0, propagation_ms=6.8, link_mbps=100.0,
        scale="1/4000", mechanism="delayline")


def test_repeats_are_pooled_before_taking_percentiles():
    rows = [row("detpath", "alone", 0), row("detpath", "alone", 1),
            row("detpath", "alone", 0, metric="reserved channel")]
    # repeat 0: 100 packets at 7.0 ms; repeat 1: 98 at 7.0 and 2 at 12 ms. Alone each has p99
    # 7.0 / 12.0; together the 2 slow ones are exactly 1% of 200: p99 7.0, p99.9 12.0
    samples = ProbeSamples(delays={"detpath, alone": [7.0] * 100 + [7.0] * 98 + [12.0, 12.0],
                                   "detpath, interference": []})
    (p,) = pooled(rows, samples)
    assert (p.controller, p.phase, p.repeats, p.probes) == ("detpath", "alone", 2, 200)
    assert p.owd_p99_ms == 7.0 and p.owd_p999_ms == 12.0 and p.owd_max_ms == 12.0
    assert p.p99_over_propagation_ms == 0.2 and p.propagation_ms == 6.8
    assert p.machine_stalls_all_cpus is None  # no survey given
    assert p.ipdv_p99_ms is None  # no IPDV pairs given
    (q,) = pooled(rows, samples, {"p999_ms": 1.4567, "all_cpus_stalled": 3})
    assert q.machine_wakeup_p999_ms == 1.457 and q.machine_stalls_all_cpus == 3


def test_ipdv_is_pooled_from_each_runs_own_pairs():
    """Two runs' probe results: run 0's pairs are 0 and +1, run 1's are -2 and 0. Pooled:
    [-2, 0, 0, 1]; no pair joins run 0's last packet with run 1's first."""
    samples = ProbeSamples()
    samples.add("detpath, alone", {"delays_ms": [7.0, 7.0, 8.0], "ipdv_ms": [0.0, 1.0]})
    other = ProbeSamples()
    other.add("detpath, alone", {"delays_ms": [9.0, 7.0, 7.0], "ipdv_ms": [-2.0, 0.0]})
    samples.extend(other)
    assert samples.delays["detpath, alone"] == [7.0, 7.0, 8.0, 9.0, 7.0, 7.0]
    (p,) = pooled([row("detpath", "alone", 0), row("detpath", "alone", 1)], samples)
    assert p.probes == 6
    assert (p.ipdv_min_ms, p.ipdv_p50_ms, p.ipdv_p99_ms, p.ipdv_max_ms) == (-2.0, 0.0, 1.0, 1.0)
    assert p.ipdv_abs_p99_ms == 2.0


def test_a_probe_rows_fields_carry_its_ipdv_rounded():
    probe = {"owd_min_ms": 6.91234, "owd_p50_ms": 7.0, "owd_p99_ms": 7.5, "owd_p999_ms": 8.0,
             "owd_max_ms": 9.0, "pdv_ms": 1.08766, "loss": 0.0, "reordered": 0,
             "ipdv_min_ms": -0.123456, "ipdv_p50_ms": 0.0, "ipdv_p99_ms": 0.2, "ipdv_max_ms": 0.3,
             "ipdv_abs_p99_ms": 0.21, "delays_ms": [7.0]}
    f = _probe_fields(probe)
    assert f["owd_min_ms"] == 6.9123 and f["ipdv_min_ms"] == pytest.approx(-0.1235)
    assert f["ipdv_abs_p99_ms"] == 0.21 and "delays_ms" not in f
