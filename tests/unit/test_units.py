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
