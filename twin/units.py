"""Parsing of the human units used in topology and campaign files.

Topology files speak the language of network engineers (``400Gbit``, ``12ms``,
``0.1%``); the emulation needs plain numbers (bit/s, seconds, fractions). All
conversions live here so every module agrees on what ``1M`` means.
"""

from __future__ import annotations

import math
import re

# What any value of each kind may be, wherever it is read (files, command-line flags); a model may
# narrow a range for its field (twin/spec/topology.py, schedule.py, campaign.py). A value outside
# is refused with the range, never carried on as inf, nan or a number no part of the twin can use.
MIN_RATE_BPS = 1e3  # 1 Kbit/s: below it one 1,500-byte frame takes 12 s to send
MAX_RATE_BPS = 1e15  # 1 Pbit/s: 20x what a fully lit long-haul fiber pair carries (~50 Tbit/s)
MAX_TIME_S = 86400.0  # one day: no delay, jitter or compute phase the twin waits out is longer
MAX_SIZE_BYTES = 2**50  # 1 PiB: 60x the fp32 gradient of a 4-trillion-parameter model

_RATE_UNITS = {
    "bit": 1.0, "bps": 1.0,
    "kbit": 1e3, "kbps": 1e3,
    "mbit": 1e6, "mbps": 1e6,
    "gbit": 1e9, "gbps": 1e9,
    "tbit": 1e12, "tbps": 1e12,
}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
}
_NUM = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"


def _split(text: str | float | int, what: str) -> tuple[float, str]:
    if isinstance(text, bool):
        raise ValueError(f"{what} must be a number with a unit, not {text!r}")
    if isinstance(text, (int, float)):
        try:
            return float(text), ""
        except OverflowError:  # an int with hundreds of digits
            raise ValueError(f"{what} {_short(text)} is not a number the twin can use") from None
    if not isinstance(text, str) or len(text) > 64:
        raise ValueError(f"cannot read {what} {_short(text)}")
    m = re.fullmatch(_NUM + r"\s*([A-Za-z%/]*)", text.strip())
    if not m:
        raise ValueError(f"cannot read {what} {text!r}")
    return float(m.group(1)), m.group(2).lower()


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def _within(value: float, text: str | float | int, what: str, low: float, high: float,
            shown: tuple[str, str]) -> float:
    """``value`` if finite and in [low, high], else ValueError naming the range (as ``shown``)."""
    if math.isnan(value):
        raise ValueError(f"{what} {_short(text)} is not a number")
    if value < low:
        if value < 0:
            raise ValueError(f"{what} {_short(text)} must not be negative")
        raise ValueError(f"{what} {_short(text)} is below {shown[0]}, the smallest the twin takes")
    if value > high:
        raise ValueError(f"{what} {_short(text)} is above {shown[1]}, the largest the twin takes")
    return value


def parse_rate(text: str | float | int) -> float:
    """Return bit/s from '400Gbit', '100 Mbit/s', '1.2Tbps'; a bare number is bit/s. Between
    MIN_RATE_BPS and MAX_RATE_BPS."""
    value, unit = _split(text, "rate")
    unit = unit.removesuffix("/s")
    if unit not in _RATE_UNITS and unit != "":
        raise ValueError(f"unknown rate unit in {text!r} (use bit, Kbit, Mbit, Gbit, Tbit)")
    return _within(value * _RATE_UNITS.get(unit, 1.0), text, "rate", MIN_RATE_BPS, MAX_RATE_BPS,
                   (format_rate(MIN_RATE_BPS), format_rate(MAX_RATE_BPS)))


def parse_time(text: str | float | int) -> float:
    """Return seconds from '12ms', '500us', '1.5s'; a bare number is seconds. From 0 to
    MAX_TIME_S."""
    value, unit = _split(text, "time")
    if unit not in _TIME_UNITS and unit != "":
        raise ValueError(f"unknown time unit in {text!r} (use s, ms, us, ns)")
    return _within(value * _TIME_UNITS.get(unit, 1.0), text, "time", 0.0, MAX_TIME_S,
                   ("0", f"{MAX_TIME_S:g}s (one day)"))


def parse_size(text: str | float | int) -> int:
    """Return bytes from '64M' / '64MiB' (binary) or '64MB' (decimal). From 0 to MAX_SIZE_BYTES."""
    value, unit = _split(text, "size")
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown size unit in {text!r} (use K, M, G, KiB, MiB, GiB, KB, MB, GB)")
    return int(round(_within(value * _SIZE_UNITS[unit], text, "size", 0.0, MAX_SIZE_BYTES,
                             ("0", "1 PiB"))))


def parse_fraction(text: str | float | int) -> float:
    """Return a fraction from '0.1%' or 0.001; from 0 to 1 (100%)."""
    value, unit = _split(text, "fraction")
    if unit == "%":
        value /= 100.0
    elif unit:
        raise ValueError(f"cannot read fraction {text!r} (use 0.001 or 0.1%)")
    return _within(value, text, "fraction", 0.0, 1.0, ("0", "1 (100%)"))


def format_rate(bps: float) -> str:
    """Short human form of a rate, e.g. 4e8 -> '400Mbit'."""
    for unit, scale in (("Tbit", 1e12), ("Gbit", 1e9), ("Mbit", 1e6), ("Kbit", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g}{unit}"
    return f"{bps:g}bit"


def format_time(seconds: float) -> str:
    """Short human form of a duration, e.g. 0.0098 -> '9.8ms'."""
    if seconds >= 1:
        return f"{seconds:.3g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g}ms"
    return f"{seconds * 1e6:.3g}us"


def udp_payload_bytes(mtu: int) -> int:
    """The largest UDP datagram that fits one frame: MTU - 20 (IP) - 8 (UDP)."""
    return mtu - 28


def tcp_payload_share(mtu: int) -> float:
    """What TCP carries of an Ethernet line rate: its MSS (MTU - 20 IP - 32 TCP with timestamps)
    per frame on the wire (MTU + 14 Ethernet header). 1500 -> 95.6%, 9000 -> 99.3%."""
    return (mtu - 52) / (mtu + 14)
