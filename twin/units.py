"""Parsing of the human units used in topology and campaign files.

Topology files speak the language of network engineers (``400Gbit``, ``12ms``,
``0.1%``); the emulation needs plain numbers (bit/s, seconds, fractions). All
conversions live here so every module agrees on what ``1M`` means.
"""

from __future__ import annotations

import re

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
        return float(text), ""
    m = re.fullmatch(_NUM + r"\s*([A-Za-z%/]*)", str(text).strip())
    if not m:
        raise ValueError(f"cannot read {what} {text!r}")
    return float(m.group(1)), m.group(2).lower()


def parse_rate(text: str | float | int) -> float:
    """Return bit/s from '400Gbit', '100 Mbit/s', '1.2Tbps'; a bare number is bit/s."""
    value, unit = _split(text, "rate")
    unit = unit.removesuffix("/s")
    if unit == "":
        return value
    if unit not in _RATE_UNITS:
        raise ValueError(f"unknown rate unit in {text!r} (use bit, Kbit, Mbit, Gbit, Tbit)")
    return value * _RATE_UNITS[unit]


def parse_time(text: str | float | int) -> float:
    """Return seconds from '12ms', '500us', '1.5s'; a bare number is seconds."""
    value, unit = _split(text, "time")
    if unit == "":
        return value
    if unit not in _TIME_UNITS:
        raise ValueError(f"unknown time unit in {text!r} (use s, ms, us, ns)")
    return value * _TIME_UNITS[unit]


def parse_size(text: str | float | int) -> int:
    """Return bytes from '64M' / '64MiB' (binary) or '64MB' (decimal)."""
    value, unit = _split(text, "size")
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown size unit in {text!r} (use K, M, G, KiB, MiB, GiB, KB, MB, GB)")
    return int(round(value * _SIZE_UNITS[unit]))


def parse_fraction(text: str | float | int) -> float:
    """Return a fraction from '0.1%' or 0.001."""
    value, unit = _split(text, "fraction")
    if unit == "%":
        return value / 100.0
    if unit:
        raise ValueError(f"cannot read fraction {text!r} (use 0.001 or 0.1%)")
    return value


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
