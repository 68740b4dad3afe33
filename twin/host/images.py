"""The worker image, built on the machine with no registry and no network inside the build.

No ``docker pull`` works on these machines, so the base is a Debian root filesystem made by
debootstrap and imported with ``docker import``; the worker image is a Dockerfile ``FROM`` that
base which copies in the project's worker-side code (``traffic/``). Both tags carry a hash of
their inputs, so an image is rebuilt exactly when what goes into it changes.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import signal
import subprocess
import tarfile
import tempfile
from pathlib import Path

from docker.errors import APIError, BuildError, DockerException, ImageNotFound
from requests.exceptions import RequestException

from twin.errors import TwinError
from twin.host import rundirs

SUITE = "bookworm"
BASE_PACKAGES = ["python3", "python3-numpy", "iperf3", "iproute2", "iputils-ping", "ethtool"]
BASE_REPO = "twin-base"
WORKER_REPO = "twin-worker"
DOCKERFILE = f"""\
ARG BASE
FROM ${{BASE}}
COPY traffic /opt/twin/traffic
ENV PYTHONPATH=/opt/twin PYTHONDONTWRITEBYTECODE=1
LABEL {rundirs.LABEL}.role=worker
WORKDIR /opt/twin
"""


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:12]


def base_image_ref() -> str:
    return f"{BASE_REPO}:{_digest([SUITE.encode(), ' '.join(BASE_PACKAGES).encode()])}"


def _worker_files() -> list[Path]:
    root = rundirs.project_root() / "traffic"
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def worker_image_ref() -> str:
    parts = [base_image_ref().encode(), DOCKERFILE.encode()]
    root = rundirs.project_root()
    for f in _worker_files():
        parts += [str(f.relative_to(root)).encode(), f.read_bytes()]
    return f"{WORKER_REPO}:{_digest(parts)}"


def stale_worker_images(client) -> list[str]:
    """Worker tags built from other traffic/ code than this checkout's (one per change; ~300 MB
    of layers each only until their shared base, but they pile up)."""
    current = worker_image_ref()
    return sorted(t for img in client.images.list(name=WORKER_REPO) for t in img.tags
                  if t.startswith(f"{WORKER_REPO}:") and t != current)


def remove_stale_worker_images(client) -> list[str]:
    """Remove those tags; one still used by a container stays (and is not reported)."""
    removed = []
    for tag in stale_worker_images(client):
        try:
            client.images.remove(tag)
            removed.append(tag)
        except APIError:
            pass
    return removed


def image_exists(client, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def build_base(client, log=print) -> str:
    """debootstrap a minimal Debian and import it (a couple of minutes, once per package list)."""
    ref = base_image_ref()
    if image_exists(client, ref):
        return ref
    if not shutil.which("debootstrap"):
        raise TwinError("debootstrap is missing; run 'make setup' (apt-get install debootstrap)")
    rootfs = rundirs.cache_dir() / f"rootfs-{ref.split(':')[1]}"
    if not (rootfs / "usr" / "bin" / "python3").exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        tmp = rootfs.with_name(rootfs.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"debootstrap {SUITE} ({', '.join(BASE_PACKAGES)}) -> {rootfs} (a few minutes)")
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             SUITE, str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise TwinError(f"debootstrap failed: {tail[0]}")
        shutil.rmtree(tmp / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        tmp.rename(rootfs)
    log(f"importing {rootfs} as {ref}")
    import_rootfs(client, rootfs, ref)
    return ref


def import_rootfs(client, rootfs: Path, ref: str) -> None:
    """``docker import`` of a root filesystem through the SDK, streamed: tar writes the archive
    into a pipe that the engine reads as it comes (chunked upload), so the archive (~270 MB for
    the base) is never held in this process's memory. A failed import leaves no image under
    ``ref``: the tag is what says the base is there."""
    repository, tag = ref.rsplit(":", 1)
    failure = ""
    with tempfile.TemporaryFile() as said:  # a file, not a pipe: tar never waits on its stderr
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE,
                               stderr=said)
        assert tar.stdout is not None
        try:
            answer = client.api.import_image_from_stream(tar.stdout, repository=repository,
                                                         tag=tag)
            failure = next(iter(import_errors(answer)), "")
        except (DockerException, RequestException) as exc:
            failure = str(exc)
        finally:
            tar.stdout.close()  # a tar still writing (the engine gave up) ends on the closed pipe
            tar.wait()
        said.seek(0)
        tar_said = said.read().decode(errors="replace").strip()
    engine_stopped_reading = tar.returncode == -signal.SIGPIPE or "Broken pipe" in tar_said
    if tar.returncode != 0 and not (failure and engine_stopped_reading):  # tar is the cause
        failure = f"tar of {rootfs} failed: {(tar_said or f'exit {tar.returncode}').splitlines()[0]}"
    elif failure or not image_exists(client, ref):
        failure = f"docker import of {rootfs} failed: {failure or f'no image {ref} afterwards'}"
    if failure:
        try:
            client.images.remove(ref, force=True)
        except (DockerException, RequestException):
            pass
        raise TwinError(failure)


def import_errors(answer: str) -> list[str]:
    """The errors in the engine's answer to an import (JSON lines; an error can come after the
    upload was accepted, so the HTTP status alone does not tell)."""
    errors = []
    for line in answer.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("error"):
            errors.append(str(message["error"]))
    return errors


def _context() -> io.BytesIO:
    """Build context with only the Dockerfile and worker code (never the venv or results)."""
    buf = io.BytesIO()
    root = rundirs.project_root()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = DOCKERFILE.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for f in _worker_files():
            tar.add(str(f), arcname=str(f.relative_to(root)))
    buf.seek(0)
    return buf


def build_worker(client, log=print) -> str:
    """Build (if its inputs changed) and return the worker image reference."""
    ref = worker_image_ref()
    if image_exists(client, ref):
        client.images.get(ref).tag(WORKER_REPO, "latest")
        return ref
    base = build_base(client, log)
    log(f"building {ref} from {base}")
    try:
        image, _ = client.images.build(fileobj=_context(), custom_context=True, tag=ref,
                                       buildargs={"BASE": base}, rm=True, pull=False,
                                       network_mode="none")
    except BuildError as exc:
        raise TwinError(f"worker image build failed: {exc.msg}") from None
    image.tag(WORKER_REPO, "latest")
    return ref
