"""Containernet's Docker node on the twin.

Containernet scripts import their node class from where Containernet puts it,
``from mininet.node import Controller, Docker, OVSSwitch``; vanilla Mininet (what the twin runs
on) has no ``mininet.node.Docker``, so that line would be an ImportError. Importing this module
(any ``twin.containernet`` import does) puts the twin's class there, so such a script needs no
change beyond its ``Containernet`` import, as long as that import comes first. A ``Docker``
already in ``mininet.node`` (Containernet itself installed) is left as it is.
"""

from __future__ import annotations

from typing import Any, Optional

import mininet.node

from twin.emulation.nodes import DockerHost

NAME_PREFIX = "mn"  # Containernet names its containers mn.<node>: `docker exec -it mn.d1 bash`


class Docker(DockerHost):
    """A container named ``mn.<name>`` as Containernet names it, running ``dcmd`` (or an idle
    loop) without the image's ENTRYPOINT, as Containernet runs it; ``start()`` runs the image's
    ENTRYPOINT and CMD in the background. Keywords: see :class:`DockerHost`."""

    def __init__(self, name: str, dimage: Optional[str] = None, dcmd: Any = None,
                 build_params: Optional[dict[str, Any]] = None, **params: Any):
        params.setdefault("dname", f"{NAME_PREFIX}.{name}")
        params.setdefault("entrypoint", [])
        super().__init__(name, dimage=dimage, dcmd=dcmd, build_params=build_params, **params)


def register_in_mininet() -> None:
    """``mininet.node.Docker`` is this class, unless mininet.node has a Docker of its own."""
    if not hasattr(mininet.node, "Docker"):
        mininet.node.Docker = Docker


register_in_mininet()
