"""Fixtures for the sandbox tests: bubblewrap, a private dockerd, local base images.

Sandboxes whose tools are missing are skipped with the reason, unless
``SAUCI_REQUIRE_SANDBOXES`` is set (CI sets it): then a missing tool fails.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Plain asserts in the public suite explain their failures like test asserts.
pytest.register_assert_rewrite("sauci.testing.sandbox")


def missing(tool: str, install: str) -> None:
    """Skip (or, under SAUCI_REQUIRE_SANDBOXES, fail) because ``tool`` is missing."""
    message = f"{tool} is not installed ({install})"
    if os.environ.get("SAUCI_REQUIRE_SANDBOXES"):
        pytest.fail(f"{message}, and SAUCI_REQUIRE_SANDBOXES is set")
    pytest.skip(message)


@pytest.fixture
def require_bwrap() -> None:
    if shutil.which("bwrap") is None:
        missing("bwrap", "apt-get install bubblewrap")


# -- a private Docker daemon (never the machine's default socket) -------------

BUSYBOX_IMAGE = "sauci-test/busybox:latest"
DEBIAN_IMAGE = "sauci-test/debian-minbase:bookworm"
PYTHON_IMAGE = "sauci-test/debian-python:bookworm"


@pytest.fixture(scope="session")
def dockerd() -> Iterator[str]:
    """``unix://...`` of a dockerd started for this test session in a temp dir."""
    binary = shutil.which("dockerd")
    if binary is None:
        missing("dockerd", "apt-get install --no-install-recommends docker.io")
    try:
        import docker
    except ImportError:
        missing("the docker Python SDK", "pip install 'sauci[docker]'")
    # A short path: a unix socket's path must fit in 108 bytes.
    state = Path(tempfile.mkdtemp(prefix="sauci-dockerd-", dir="/tmp"))
    sock = state / "docker.sock"
    logfile = open(state / "dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            binary,
            "--data-root",
            str(state / "data"),
            "--exec-root",
            str(state / "exec"),
            "--pidfile",
            str(state / "dockerd.pid"),
            "-H",
            f"unix://{sock}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=overlay2",
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {(state / 'dockerd.log').read_text()[-2000:]}")
            if sock.exists():
                try:
                    docker.APIClient(base_url=url, version="auto", timeout=5).ping()
                    break
                except docker.errors.DockerException:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("dockerd did not answer within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()
        subprocess.run(
            ["umount", "-l", str(state / "exec" / "netns" / "default")],
            stderr=subprocess.DEVNULL,
            check=False,
        )
        subprocess.run(
            ["umount", "-R", "-l", str(state / "data")], stderr=subprocess.DEVNULL, check=False
        )
        shutil.rmtree(state, ignore_errors=True)


def _busybox_rootfs() -> bytes:
    """A tar of Debian's static busybox with its applets as symlinks."""
    binary = shutil.which("busybox")
    # A dynamically linked busybox would need the host's libc in the image.
    if binary is None or b"ld-linux" in Path(binary).read_bytes()[:4096]:
        missing("a static busybox", "apt-get install busybox-static")
    applets = subprocess.run(
        [binary, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for d, mode in (
            ("bin", 0o755),
            ("tmp", 0o1777),
            ("var", 0o755),
            ("var/tmp", 0o1777),
            ("etc", 0o755),
            ("proc", 0o755),
            ("sys", 0o755),
            ("dev", 0o755),
            ("workspace", 0o755),
            ("root", 0o700),
        ):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(binary, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture(scope="session")
def busybox_image(dockerd: str) -> str:
    import docker

    api = docker.APIClient(base_url=dockerd, version="auto", timeout=120)
    api.import_image_from_data(
        _busybox_rootfs(), repository=BUSYBOX_IMAGE.split(":")[0], tag="latest"
    )
    return BUSYBOX_IMAGE


@pytest.fixture(scope="session")
def debian_image(dockerd: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A debootstrapped Debian minbase, built once and cached as a tarball.

    The tarball lives at ``$SAUCI_DEBIAN_ROOTFS`` (CI keeps it between
    runs) or in this session's temp dir.
    """
    import docker

    cached = os.environ.get("SAUCI_DEBIAN_ROOTFS")
    tarball = Path(cached) if cached else tmp_path_factory.mktemp("debian") / "rootfs.tar"
    if not tarball.exists():
        if shutil.which("debootstrap") is None:
            missing("debootstrap", "apt-get install debootstrap")
        root = Path(tempfile.mkdtemp(prefix="sauci-debootstrap-", dir="/tmp"))
        try:
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "bookworm",
                    str(root),
                    "http://deb.debian.org/debian",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=600,
            )
            tarball.parent.mkdir(parents=True, exist_ok=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)  # whole or absent, for the next run
        finally:
            shutil.rmtree(root, ignore_errors=True)
    api = docker.APIClient(base_url=dockerd, version="auto", timeout=600)
    with open(tarball, "rb") as fh:
        api.import_image_from_data(fh.read(), repository=DEBIAN_IMAGE.split(":")[0], tag="bookworm")
    return DEBIAN_IMAGE


# -- the Debian minbase image with a Python ------------------------------------
# The host's Python 3.11 (Debian 12's, like the image), its standard library
# and the one library it needs that minbase lacks (libexpat), copied in by a
# build (no registry is reachable).


def _python_context() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        dockerfile = (
            b"FROM sauci-test/debian-minbase:bookworm\n"
            b"COPY python3.11 /usr/bin/python3.11\n"
            b"COPY libexpat.so.1 /usr/lib/x86_64-linux-gnu/libexpat.so.1\n"
            b"COPY lib /usr/lib/python3.11\n"
            b"RUN ln -s python3.11 /usr/bin/python3\n"
        )
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(os.path.realpath("/usr/bin/python3.11"), "python3.11")
        tar.add(os.path.realpath("/lib/x86_64-linux-gnu/libexpat.so.1"), "libexpat.so.1")
        skip = {
            "test",
            "idlelib",
            "tkinter",
            "ensurepip",
            "lib2to3",
            "__pycache__",
            "config-3.11-x86_64-linux-gnu",
        }

        def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
            return None if skip & set(Path(member.name).parts) else member

        tar.add("/usr/lib/python3.11", "lib", filter=keep)
    return out.getvalue()


@pytest.fixture(scope="session")
def python_image(dockerd: str, debian_image: str) -> str:
    import docker

    if (
        not Path("/usr/bin/python3.11").exists()
        or not Path("/lib/x86_64-linux-gnu/libexpat.so.1").exists()
    ):
        pytest.skip("needs the host's Debian 12 python3.11 to copy into the image")
    api = docker.APIClient(base_url=dockerd, version="auto", timeout=600)
    for _ in api.build(
        fileobj=io.BytesIO(_python_context()),
        custom_context=True,
        tag=PYTHON_IMAGE,
        network_mode="none",
        rm=True,
        decode=True,
    ):
        pass
    api.inspect_image(PYTHON_IMAGE)  # raises when the build failed
    return PYTHON_IMAGE
