"""Containernet's Docker node on the twin."""

from __future__ import annotations

from typing import Any, Optional

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
