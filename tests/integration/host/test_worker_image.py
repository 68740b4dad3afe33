"""The worker image runs the worker-side code with no network at all."""

import json
import subprocess

from twin.host.images import worker_image_ref


def test_worker_code_runs_in_a_container_with_network_none(daemons):
    ref = worker_image_ref()
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", ref,
                           "python3", "-m", "traffic.probe", "selftest"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["sent"] == 500
    assert result["received"] == 500 and result["loss"] == 0.0
    assert result["reordered"] == 0
    assert 0 < result["owd_min_ms"] < 50


def test_image_tag_follows_its_inputs():
    # the tag is a content hash: computing it twice gives the same answer
    assert worker_image_ref() == worker_image_ref()
    assert worker_image_ref().startswith("twin-worker:")


def test_clean_images_removes_only_worker_tags_of_older_code(daemons):
    ref = worker_image_ref()
    old = "twin-worker:000000000000"  # as a build from other traffic/ code would be tagged
    subprocess.run(["docker", "tag", ref, old], check=True)
    try:
        from twin.host.engine import docker_client
        from twin.host.images import remove_stale_worker_images, stale_worker_images
        client = docker_client()
        assert old in stale_worker_images(client) and ref not in stale_worker_images(client)
        assert old in remove_stale_worker_images(client)
        tags = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                               "twin-worker"], capture_output=True, text=True).stdout.split()
        assert ref in tags and old not in tags
    finally:
        subprocess.run(["docker", "rmi", old], capture_output=True)
