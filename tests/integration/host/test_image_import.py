"""Importing a root filesystem into the engine, streamed (as the base image is imported)."""

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.locations import ROOT
from twin.errors import TwinError
from twin.host.engine import docker_client
from twin.host.images import image_exists, import_rootfs

PAYLOAD = 128 * 1024**2

MEASURE = """
import json, resource, sys
from pathlib import Path
from twin.host.engine import docker_client
from twin.host.images import import_rootfs
client = docker_client()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
import_rootfs(client, Path(sys.argv[1]), sys.argv[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "after": after}))
"""


@pytest.fixture
def ref():
    tag = f"twin-test-import:{uuid.uuid4().hex[:12]}"
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_a_rootfs_is_imported_without_holding_it_in_memory(daemons, tmp_path, ref):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("twin-test\n")
    with open(rootfs / "payload", "wb") as f:  # random: nothing along the way compresses it
        for _ in range(PAYLOAD // 2**20):
            f.write(os.urandom(2**20))
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(rootfs), ref], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    rss = json.loads(proc.stdout)
    # the 128 MB went through a pipe in small chunks: the peak grew by far less than that
    assert rss["after"] - rss["before"] < PAYLOAD / 4, rss
    client = docker_client()
    assert image_exists(client, ref)
    assert client.images.get(ref).attrs["Size"] >= PAYLOAD  # the file is in the image's layer


def test_a_missing_rootfs_fails_in_one_line_and_makes_no_image(daemons, tmp_path, ref):
    with pytest.raises(TwinError, match=r"^tar of .*/nothing-here failed: .*No such file"):
        import_rootfs(docker_client(), tmp_path / "nothing-here", ref)
    assert not image_exists(docker_client(), ref)
