"""Fixtures of the drive tests that run PyTorch in the workers."""

from __future__ import annotations

import pytest

from twin.errors import TwinError


@pytest.fixture(scope="module")
def torch_image(daemons):
    """The torch image, built here if its inputs changed; a skip only where pip cannot get torch."""
    from twin.host.engine import docker_client
    from twin.host.images import TorchUnavailable, build_torch
    try:
        return build_torch(docker_client(), log=lambda s: None)
    except TorchUnavailable as exc:
        pytest.skip(f"the torch image cannot be built on this machine: {exc}")
    except TwinError as exc:
        pytest.fail(f"the torch image build failed: {exc}")
