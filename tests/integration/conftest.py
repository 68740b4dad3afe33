"""Integration fixtures: real dockerd, real OVS, real tc, real containers.

These tests skip only where the machinery cannot exist at all (not root). On CI (root, after
`make setup`) they run; a missing daemon there is a failure, not a skip.
"""

from __future__ import annotations

import os

import pytest

from tests.integration.machine import leftovers
from tests.locations import TOPOS
from twin.emulation import cleanup
from twin.errors import TwinError
from twin.host import services


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root: namespaces, veths, OVS bridges and tc need it")
        for item in items:
            if "integration" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def daemons():
    services.ensure_docker()
    services.ensure_ovs()




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


@pytest.fixture
def clean_machine(daemons):
    """Start from nothing; afterwards the test's own teardown must have left nothing."""
    cleanup.clean()
    yield
    left = leftovers()
    cleanup.clean()
    assert not any(left.values()), f"the run left things behind: {left}"




@pytest.fixture(scope="module")
def ci2site(daemons):
    """ci-2site up for a whole test module; its teardown must leave nothing behind."""
    from twin.emulation import runtime
    from twin.spec.topology import load_topology
    cleanup.clean()
    topo = load_topology(TOPOS / "ci-2site.yaml")
    _, state = runtime.up(topo, str(TOPOS / "ci-2site.yaml"), "none", progress=lambda s: None)
    yield topo, state
    runtime.down()
    left = leftovers()
    assert not any(left.values()), f"twin down left: {left}"
