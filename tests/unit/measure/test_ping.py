"""ping prints three significant digits from 1 ms up: the median of a 13.4 ms path's round trips
is read within the 0.1 ms step they were rounded to, not as the step's centre."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.measure.ping import median_rtt_ms, parse_ping_rtts, resolution_ms


def printed(rtt_ms: float) -> float:
    """What iputils ping prints for a round trip (ms), read back as parse_ping_rtts reads it."""
    text = f"64 bytes from 10.2.0.1: icmp_seq=1 ttl=64 time={rtt_ms:.{_decimals(rtt_ms)}f} ms"
    return parse_ping_rtts(text)[0]


def _decimals(rtt_ms: float) -> int:
    return 0 if rtt_ms >= 99.95 else 1 if rtt_ms >= 9.995 else 2 if rtt_ms >= 1.0 else 3


@pytest.mark.parametrize("rtt, step", [(0.534, 0.001), (1.0, 0.01), (9.99, 0.01), (13.4, 0.1),
                                       (99.9, 0.1), (107.0, 1.0)])
def test_the_step_is_the_one_ping_prints_in(rtt, step):
    assert resolution_ms(rtt) == step


def test_a_median_between_two_printed_values_is_found_between_them():
    # 100 round trips around 13.43 ms; ping prints 13.3, 13.4 or 13.5: the plain median of what
    # it printed is 13.4 whatever the round trips' own median within (13.35, 13.45) was
    rng = random.Random(7)
    true = [rng.gauss(13.43, 0.04) for _ in range(101)]
    shown = [printed(x) for x in true]
    assert statistics.median(shown) == 13.4
    plain_error = abs(statistics.median(shown) - statistics.median(true))
    error = abs(median_rtt_ms(shown) - statistics.median(true))
    assert plain_error > 0.025 and error < 0.02 and error < plain_error / 2, (plain_error, error)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.05, max_value=500.0), st.floats(min_value=0.0, max_value=0.2),
       st.integers(min_value=0, max_value=2**32))
def test_the_median_stays_within_half_a_step_of_the_printed_median(centre, spread, seed):
    rng = random.Random(seed)
    shown = [printed(max(0.001, rng.gauss(centre, spread * centre))) for _ in range(41)]
    plain = statistics.median(shown)
    assert abs(median_rtt_ms(shown) - plain) <= resolution_ms(plain) / 2 + 1e-9


def test_no_round_trips_no_median():
    with pytest.raises(ValueError):
        median_rtt_ms([])
