"""The worker images, built on the machine with no registry and no network inside the build.

No ``docker pull`` works on these machines, so the base is a Debian root filesystem made by
debootstrap and imported with ``docker import``; the worker image is a Dockerfile ``FROM`` that
base which copies in the project's worker-side code (``traffic/``). The torch image (optional,
built on demand) is the worker image plus PyTorch's CPU build, installed on the host from the
wheels pip can get and copied in: it runs ``traffic.torch_bench`` (torch.distributed over gloo)
beside the twin's own ranks. Every tag carries a hash of its inputs, so an image is rebuilt
exactly when what goes into it changes.

  python -m twin.host.images torch     (``make image-torch``) builds the torch image
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Callable

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

# The one pin of PyTorch: the CPU build (a local version label, so pip never takes a CUDA build
# and its GBs of dependencies), for the worker image's python3 (Debian bookworm's CPython 3.11).
TORCH_VERSION = "2.13.0"
TORCH_BUILD = "cpu"
TORCH_REQUIREMENT = f"torch=={TORCH_VERSION}+{TORCH_BUILD}"
TORCH_PYTHON = "3.11"
TORCH_REPO = "twin-torch"
# torch (~700 MB installed) first, so a change of traffic/ rebuilds only the last small layer;
# the byte code is compiled by the image's own python3 (the import takes seconds without it).
TORCH_DOCKERFILE = f"""\
ARG BASE
FROM ${{BASE}}
COPY torch /opt/torch
RUN python3 -m compileall -q -j 2 /opt/torch > /dev/null; true
COPY traffic /opt/twin/traffic
ENV PYTHONPATH=/opt/twin:/opt/torch PYTHONDONTWRITEBYTECODE=1
LABEL {rundirs.LABEL}.role=worker
WORKDIR /opt/twin
"""
WHEEL_SUMS = "SHA256SUMS"  # beside the downloaded wheels: their content hashes, written last

Log = Callable[[str], None]


class TorchUnavailable(TwinError):
    """pip cannot get the pinned torch on this machine; the message says how to get it."""


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
    """Worker and torch tags built from other traffic/ code (or other wheels) than this
    checkout's (one per change; their layers are shared up to the code, but they pile up)."""
    current = {worker_image_ref(), f"{WORKER_REPO}:latest", f"{TORCH_REPO}:latest"}
    sums = _wheel_sums_file()
    if sums.exists():
        current.add(torch_image_ref(sums.read_text()))
    return sorted(t for repo in (WORKER_REPO, TORCH_REPO) for img in client.images.list(name=repo)
                  for t in img.tags if t.startswith(f"{repo}:") and t not in current)


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


def _context(dockerfile: str, into: IO[bytes], trees: tuple[tuple[Path, str], ...] = ()) -> IO[bytes]:
    """Build context with only the Dockerfile, the worker code and the given folders (each as
    its name in the context), never the venv or results."""
    root = rundirs.project_root()
    with tarfile.open(fileobj=into, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for f in _worker_files():
            tar.add(str(f), arcname=str(f.relative_to(root)))
        for folder, name in trees:
            tar.add(str(folder), arcname=name)
    into.seek(0)
    return into


def build_worker(client, log=print) -> str:
    """Build (if its inputs changed) and return the worker image reference."""
    ref = worker_image_ref()
    if image_exists(client, ref):
        client.images.get(ref).tag(WORKER_REPO, "latest")
        return ref
    base = build_base(client, log)
    log(f"building {ref} from {base}")
    try:
        image, _ = client.images.build(fileobj=_context(DOCKERFILE, io.BytesIO()),
                                       custom_context=True, tag=ref, buildargs={"BASE": base},
                                       rm=True, pull=False, network_mode="none")
    except BuildError as exc:
        raise TwinError(f"worker image build failed: {exc.msg}") from None
    image.tag(WORKER_REPO, "latest")
    return ref


# ---- the torch image --------------------------------------------------------------------

def _torch_dir() -> Path:
    return rundirs.cache_dir() / f"torch-{TORCH_VERSION}+{TORCH_BUILD}"


def _wheel_sums_file() -> Path:
    return _torch_dir() / "wheels" / WHEEL_SUMS


def _pip_target_args() -> list[str]:
    """pip's options for wheels that run in the image, whatever python runs pip on the host."""
    arch = platform.machine()
    platforms = [f"manylinux_2_28_{arch}", f"manylinux_2_17_{arch}", f"manylinux2014_{arch}",
                 f"linux_{arch}"]
    return (["--only-binary=:all:", "--python-version", TORCH_PYTHON, "--implementation", "cp",
             "--abi", f"cp{TORCH_PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
            + [a for p in platforms for a in ("--platform", p)])


def _pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or [f"exit status {proc.returncode}"])[-1]


def how_to_get_torch(reason: str) -> str:
    """The one line for a machine where pip cannot get the pinned torch."""
    return (f"PyTorch {TORCH_VERSION} (CPU build, CPython {TORCH_PYTHON}) is not available to pip "
            f"here ({reason}): set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu, or "
            f"PIP_FIND_LINKS to a folder holding the wheels of '{TORCH_REQUIREMENT}', then run "
            "'make image-torch'")


def torch_wheels(log: Log = print) -> str:
    """Download the pinned torch and its dependencies as wheels (once) and return their
    ``SHA256SUMS`` (hash and file name per line: the content the torch image's tag hashes)."""
    sums = _wheel_sums_file()
    if sums.exists():
        return sums.read_text()
    wheels = sums.parent
    shutil.rmtree(wheels, ignore_errors=True)
    tmp = wheels.with_name("wheels.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"pip download {TORCH_REQUIREMENT} and its dependencies -> {wheels}")
    proc = _pip(["download", "--quiet", "--dest", str(tmp), *_pip_target_args(), TORCH_REQUIREMENT])
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TorchUnavailable(how_to_get_torch(_last_line(proc)))
    lines = []
    for whl in sorted(tmp.glob("*.whl")):
        h = hashlib.sha256()
        with whl.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        lines.append(f"{h.hexdigest()}  {whl.name}\n")
    (tmp / WHEEL_SUMS).write_text("".join(lines))
    tmp.rename(wheels)
    return sums.read_text()


def torch_image_ref(wheel_sums: str) -> str:
    parts = [base_image_ref().encode(), TORCH_DOCKERFILE.encode(), wheel_sums.encode()]
    root = rundirs.project_root()
    for f in _worker_files():
        parts += [str(f.relative_to(root)).encode(), f.read_bytes()]
    return f"{TORCH_REPO}:{_digest(parts)}"


def _torch_site(wheel_sums: str, log: Log) -> Path:
    """The wheels installed into a folder on the host (``pip install --target``), as the
    image's /opt/torch; kept per set of wheels."""
    site = _torch_dir() / f"site-{_digest([wheel_sums.encode()])}"
    if (site / "torch" / "__init__.py").exists():
        return site
    shutil.rmtree(site, ignore_errors=True)
    tmp = site.with_name(site.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    wheels = sorted(str(p) for p in _wheel_sums_file().parent.glob("*.whl"))
    log(f"pip install --target {site} ({len(wheels)} wheels)")
    proc = _pip(["install", "--quiet", "--no-index", "--no-deps", "--no-compile", "--target",
                 str(tmp), *_pip_target_args(), *wheels])
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TwinError(f"pip install of the torch wheels failed: {_last_line(proc)}")
    tmp.rename(site)
    return site


def build_torch(client, log: Log = print) -> str:
    """Build (if its inputs changed) and return the torch image reference; TorchUnavailable
    (one line saying how to get torch) where pip cannot get it."""
    sums = torch_wheels(log)
    ref = torch_image_ref(sums)
    if image_exists(client, ref):
        client.images.get(ref).tag(TORCH_REPO, "latest")
        return ref
    base = build_base(client, log)
    site = _torch_site(sums, log)
    log(f"building {ref} from {base} (PyTorch {TORCH_VERSION}, ~1 GB; a few minutes)")
    with tempfile.TemporaryFile(dir=rundirs.cache_dir()) as context:
        _context(TORCH_DOCKERFILE, context, ((site, "torch"),))
        try:
            image, _ = client.images.build(fileobj=context, custom_context=True, tag=ref,
                                           buildargs={"BASE": base}, rm=True, pull=False,
                                           network_mode="none")
        except BuildError as exc:
            raise TwinError(f"torch image build failed: {exc.msg}") from None
    image.tag(TORCH_REPO, "latest")
    return ref


def main(argv: list[str] | None = None) -> int:
    """``python -m twin.host.images torch|worker``: build that image and print its reference."""
    from twin.host.engine import docker_client
    which = (argv if argv is not None else sys.argv[1:]) or ["worker"]
    build = {"worker": build_worker, "torch": build_torch}.get(which[0])
    if build is None:
        print("usage: python -m twin.host.images [worker|torch]", file=sys.stderr)
        return 2
    try:
        print(build(docker_client(), log=lambda s: print(s, file=sys.stderr, flush=True)))
    except TwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
