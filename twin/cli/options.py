"""Flags several verbs share: ``--scale`` (``twin up``, ``twin experiment determinism``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Optional

from twin.errors import TwinError

if TYPE_CHECKING:
    from twin.spec.topology import Topology


def add_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", help="override the topology's bandwidth scale, e.g. 1/4000")


def scaled(topo: Topology, scale: Optional[str]) -> Topology:
    """``topo`` itself without ``--scale``; a bad ratio is one line naming the flag."""
    if not scale:
        return topo
    try:
        return topo.with_scale(scale)
    except ValueError as exc:
        raise TwinError(f"--scale {scale!r}: {exc}") from None
