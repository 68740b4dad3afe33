"""What the drive tests ask of a worker container: which of its processes run a command."""

from __future__ import annotations

from twin.host.engine import docker_client


def in_container(container: str, word: str) -> list[str]:
    """The container's processes (as `docker top` lists them) whose command line has ``word``."""
    top = docker_client().containers.get(container).top(ps_args="-eo pid,args")
    return [" ".join(p) for p in top["Processes"] if word in " ".join(p)]
