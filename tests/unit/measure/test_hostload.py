"""twin.measure.hostload: a measurement is judged on the samples taken while it ran."""

from twin.measure.hostload import HostLoad


def test_only_the_samples_within_the_window_count():
    load = HostLoad()
    load.shares = [1.0, 1.0, 0.2, 0.3, 0.99, 1.0]
    load.stamps = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0]
    inside = load.summary_between(2.5, 5.0)
    assert inside.samples == 3 and round(inside.saturated_share, 3) == 0.333 and inside.host_bound
    assert not load.summary_between(2.5, 4.5).host_bound
    assert load.summary.samples == 6
    assert load.summary_between(20.0, 30.0).samples == 0
