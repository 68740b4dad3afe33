import pytest

from twin.units import (
    format_rate,
    format_time,
    parse_fraction,
    parse_rate,
    parse_size,
    parse_time,
)


@pytest.mark.parametrize("text,bps", [("400Gbit", 400e9), ("100 Mbit/s", 100e6), ("1.2Tbit", 1.2e12),
                                      ("10gbps", 10e9), (5000, 5000.0), ("2.5e3Kbit", 2.5e6)])
def test_rates(text, bps):
    assert parse_rate(text) == pytest.approx(bps)


@pytest.mark.parametrize("text,s", [("12ms", 0.012), ("500us", 5e-4), ("1.5s", 1.5), (0.2, 0.2)])
def test_times(text, s):
    assert parse_time(text) == pytest.approx(s)


def test_sizes_binary_and_decimal():
    assert parse_size("64M") == 64 * 1024**2
    assert parse_size("64MiB") == 64 * 1024**2
    assert parse_size("64MB") == 64_000_000
    assert parse_size(1500) == 1500


def test_fractions():
    assert parse_fraction("0.1%") == pytest.approx(0.001)
    assert parse_fraction(0.02) == 0.02


@pytest.mark.parametrize("bad", ["fast", "10 parsecs", "Gbit", "", True])
def test_rejects_garbage(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def test_formatting_round_trip():
    assert format_rate(4e8) == "400Mbit"
    assert format_time(0.0098) == "9.8ms"
    assert parse_rate(format_rate(1.2e12)) == pytest.approx(1.2e12)


@pytest.mark.parametrize("text,reason", [
    ("1e999Gbit", "rate '1e999Gbit' is above 1000Tbit, the largest the twin takes"),
    ("2000Tbit", "rate '2000Tbit' is above 1000Tbit, the largest the twin takes"),
    (float("inf"), "rate inf is above 1000Tbit, the largest the twin takes"),
    (float("nan"), "rate nan is not a number"),
    ("nan", "cannot read rate 'nan'"),
    ("inf", "cannot read rate 'inf'"),
    ("-5Mbit", "cannot read rate '-5Mbit'"),
    (-5, "rate -5 must not be negative"),
    (0, "rate 0 is below 1Kbit, the smallest the twin takes"),
    ("1e-7bit", "rate '1e-7bit' is below 1Kbit, the smallest the twin takes"),
    (10**400, "is not a number the twin can use"),
])
def test_rates_outside_what_the_twin_takes_are_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError) as exc:
        parse_rate(text)
    assert reason in str(exc.value)


@pytest.mark.parametrize("parse,text,reason", [
    (parse_time, "1e999s", "above 86400s (one day)"),
    (parse_time, float("inf"), "above 86400s (one day)"),
    (parse_time, float("nan"), "time nan is not a number"),
    (parse_time, -1, "time -1 must not be negative"),
    (parse_time, "2e5s", "above 86400s"),
    (parse_size, "1e999G", "above 1 PiB"),
    (parse_size, float("inf"), "above 1 PiB"),
    (parse_size, float("nan"), "size nan is not a number"),
    (parse_size, -1, "must not be negative"),
    (parse_fraction, float("nan"), "fraction nan is not a number"),
    (parse_fraction, "150%", "above 1 (100%)"),
    (parse_fraction, -0.5, "must not be negative"),
    (parse_fraction, "1" * 80, "cannot read fraction"),
])
def test_times_sizes_and_fractions_are_finite_and_in_range(parse, text, reason):
    with pytest.raises(ValueError) as exc:
        parse(text)
    assert reason in str(exc.value)


def test_the_ranges_include_their_ends():
    assert parse_rate("1Kbit") == 1e3 and parse_rate("1000Tbit") == 1e15
    assert parse_time("86400s") == 86400 and parse_time(0) == 0
    assert parse_fraction("100%") == 1.0 and parse_size(0) == 0
