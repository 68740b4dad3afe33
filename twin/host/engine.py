"""The Docker engine, through the Docker SDK: one shared client for everything that uses the
engine, and a probe that tells whether the engine answers at all.
"""

from __future__ import annotations

import threading
from typing import Optional

import docker
from docker.constants import MINIMUM_DOCKER_API_VERSION
from docker.errors import DockerException
from requests.exceptions import RequestException, Timeout

from twin.errors import TwinError

SOCKET = "unix:///var/run/docker.sock"
PROBE_TIMEOUT_S = 15.0  # an engine that is still starting may accept and not answer yet

_client_lock = threading.Lock()
_client: Optional[docker.DockerClient] = None


def docker_client() -> docker.DockerClient:
    """One shared client; API version negotiated with whatever engine the machine has.

    Kept only once the engine has answered (the negotiation is its first request), so asking
    while the engine is down raises and leaves nothing behind: the next call tries afresh."""
    global _client
    with _client_lock:
        if _client is None:
            try:
                _client = docker.DockerClient(base_url=SOCKET, version="auto", timeout=120)
            except DockerException as exc:
                raise TwinError(f"docker engine not reachable on {SOCKET}: {_reason(exc)}; "
                                "run 'make setup'") from None
        return _client


def engine_version(socket: str = SOCKET) -> str:
    """The engine's version, or TwinError saying why it does not answer.

    Asked on a connection of its own with a short timeout, closed afterwards: this is how the
    twin finds out whether it has to start dockerd, so it must work while the engine is down or
    half started, and never touch the shared client (whose timeout is made for image builds)."""
    api = docker.APIClient(base_url=socket, version=MINIMUM_DOCKER_API_VERSION,
                           timeout=PROBE_TIMEOUT_S)
    try:
        return str(api.version(api_version=False)["Version"])
    except Timeout:
        raise TwinError(f"docker engine not answering on {socket}: no answer within "
                        f"{PROBE_TIMEOUT_S:g} s") from None
    except (DockerException, RequestException, KeyError) as exc:
        raise TwinError(f"docker engine not answering on {socket}: {_reason(exc)}") from None
    finally:
        api.close()


def _reason(exc: BaseException) -> str:
    """The operating system's words where there are some ('Connection refused'), not the
    HTTP library's nest of wrappers around them."""
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, OSError) and arg.strerror:
                return arg.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
