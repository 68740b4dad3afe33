"""Flags several verbs share: ``--scale`` and ``--dilation`` (the verbs that bring a twin up)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Optional

from twin.errors import TwinError

if TYPE_CHECKING:
    from twin.spec.topology import Topology


def add_scale(p: argparse.ArgumentParser, dilation: bool = True) -> None:
    p.add_argument("--scale", help="override the topology's bandwidth scale, e.g. 1/4000")
    if dilation:
        p.add_argument("--dilation", type=float, metavar="K",
                       help="run the fabric K times slower than real, report in fabric time "
                            "(overrides the topology's scale.time; docs/emulation.md)")


def scaled(topo: Topology, scale: Optional[str], dilation: Optional[float] = None) -> Topology:
    """``topo`` itself without ``--scale`` and ``--dilation``; a bad ratio or factor is one line
    naming the flag."""
    if scale:
        try:
            topo = topo.with_scale(scale)
        except ValueError as exc:
            raise TwinError(f"--scale {scale!r}: {exc}") from None
    if dilation is not None:
        try:
            topo = topo.with_dilation(dilation)
        except ValueError as exc:
            raise TwinError(f"--dilation {dilation:g}: {exc}") from None
    return topo
