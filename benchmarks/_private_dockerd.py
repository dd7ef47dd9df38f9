"""A dockerd of the benchmark's own (never the machine's default socket), and the
debootstrapped Debian base imported into it, as tests/sandbox/conftest.py does."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOTFS = Path(os.environ.get("SAUCI_DEBIAN_ROOTFS", "/var/cache/sauci-ci/debian-rootfs.tar"))
IMAGE = "sauci-bench/debian-minbase:bookworm"


@contextlib.contextmanager
def private_dockerd() -> Iterator[tuple[str, str] | str]:
    """``(url, image)`` of a fresh dockerd with the Debian base, or why there is none."""
    binary = shutil.which("dockerd")
    if binary is None or os.geteuid() != 0:
        yield "needs dockerd and root"
        return
    if not ROOTFS.exists():
        yield f"needs the Debian rootfs tarball {ROOTFS} (tests/sandbox/conftest.py builds it)"
        return
    import docker

    state = Path(tempfile.mkdtemp(prefix="sauci-bdockerd-", dir="/tmp"))
    sock = state / "docker.sock"
    url = f"unix://{sock}"
    with open(state / "dockerd.log", "wb") as logfile:
        proc = subprocess.Popen(
            [binary, "--data-root", str(state / "data"), "--exec-root", str(state / "exec"),
             "--pidfile", str(state / "dockerd.pid"), "-H", url, "--iptables=false",
             "--ip6tables=false", "--bridge=none", "--storage-driver=overlay2"],
            stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise SystemExit(
                        f"dockerd exited: {(state / 'dockerd.log').read_text()[-800:]}"
                    )
                with contextlib.suppress(docker.errors.DockerException):
                    if sock.exists() and docker.APIClient(base_url=url, timeout=5).ping():
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("dockerd did not answer within 60 s")
                time.sleep(0.1)
            api = docker.APIClient(base_url=url, version="auto", timeout=600)
            with open(ROOTFS, "rb") as fh:
                api.import_image_from_data(
                    fh.read(), repository=IMAGE.split(":")[0], tag="bookworm"
                )
            yield url, IMAGE
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for target in (state / "exec" / "netns" / "default", state / "data"):
                subprocess.run(["umount", "-R", "-l", str(target)], stderr=subprocess.DEVNULL)
            shutil.rmtree(state, ignore_errors=True)


def dockerd_cpu_seconds(url: str) -> float:
    """user+system CPU seconds of the dockerd at ``url`` so far (from /proc)."""
    pid = int((Path(url.removeprefix("unix://")).parent / "dockerd.pid").read_text())
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
