"""A GitHub job on the runner (`runs-on: ubuntu-latest`, no `container:`)
with `services:`, end to end through `sauci run --sandbox docker` on a
private dockerd: the job runs in the Docker sandbox's default image, which
the operator sets (`docker_image`, here SAUCI_DOCKER_IMAGE), and reaches its
service, a tiny Python HTTP server built from the same Debian rootfs, on
localhost as GitHub's runner does. Without a sandbox that runs services,
`sauci validate` and `sauci run` name the key at file:line:col."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SERVICE_IMAGE = "sauci-test/python-httpd:bookworm"

WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    services:
      web:
        image: sauci-test/python-httpd:bookworm
        ports: ["8080:8080"]
        options: --health-cmd "python3 /probe.py" --health-interval 1s
    steps:
      - uses: actions/checkout@v4
      - name: talk to the service
        shell: python3 {0}
        run: |
          import urllib.request
          port = "${{ job.services.web.ports['8080'] }}"
          body = urllib.request.urlopen(f"http://localhost:{port}/").read().decode().strip()
          print("service says", body, "on", "${{ runner.os }}")
      - run: test -f README
"""


@pytest.fixture(scope="session")
def service_image(dockerd: str, python_image: str) -> str:
    """python3 -m http.server serving one page, from the Debian image with a Python."""
    import docker

    files = {
        "Dockerfile": (
            f"FROM {python_image}\n"
            "COPY www /www\nCOPY probe.py /probe.py\n"
            'CMD ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", "/www"]\n'
        ),
        "www/index.html": "hello from the service\n",
        "probe.py": "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:8080/')\n",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    api = docker.APIClient(base_url=dockerd, version="auto", timeout=300)
    for _ in api.build(
        fileobj=io.BytesIO(out.getvalue()),
        custom_context=True,
        tag=SERVICE_IMAGE,
        network_mode="none",
        rm=True,
    ):
        pass
    api.inspect_image(SERVICE_IMAGE)  # raises when the build failed
    return SERVICE_IMAGE


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW, encoding="utf-8")
    (root / "README").write_text("checked out\n", encoding="utf-8")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ci"], check=True)
    return root


def _sauci(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **env},
        timeout=300,
    )


def test_a_runner_job_reaches_its_service_in_the_default_image(
    repo: Path, tmp_path: Path, dockerd: str, python_image: str, service_image: str
) -> None:
    env = {
        "SAUCI_DATA_DIR": str(tmp_path / "data"),
        "DOCKER_HOST": dockerd,
        "SAUCI_DOCKER_IMAGE": python_image,
    }
    done = _sauci("run", "--sandbox", "docker", str(repo), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "service says hello from the service on Linux" in done.stdout


def test_a_default_image_without_python_is_named(
    repo: Path, tmp_path: Path, dockerd: str, debian_image: str, service_image: str
) -> None:
    env = {
        "SAUCI_DATA_DIR": str(tmp_path / "data"),
        "DOCKER_HOST": dockerd,
        "SAUCI_DOCKER_IMAGE": debian_image,
    }
    done = _sauci("run", "--sandbox", "docker", str(repo), env=env)
    assert done.returncode != 0
    assert (
        "the sandbox's default image (a job on the runner with services runs in it) has no python3"
        in done.stdout
    )


def test_without_a_sandbox_that_runs_services_the_key_is_named(repo: Path, tmp_path: Path) -> None:
    env = {"SAUCI_DATA_DIR": str(tmp_path / "data")}
    message = "ci.yml:6:7: sandbox 'local' cannot run services (job 'test'): use --sandbox docker"
    done = _sauci("validate", str(repo / ".github" / "workflows" / "ci.yml"), env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout
    done = _sauci("run", str(repo), env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout + done.stderr


def test_a_servers_docker_sandbox_gets_the_default_image(
    dockerd: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sauci.core.config import Settings
    from sauci.sandbox.policy import server_sandboxes

    monkeypatch.setenv("DOCKER_HOST", dockerd)
    settings = Settings(data_dir=tmp_path / "data", sandbox="docker", docker_image="team/ci:1")
    sandboxes = server_sandboxes(settings, cgroup_prefix="sauci-test-image-")
    assert sandboxes.default.image == "team/ci:1"  # type: ignore[attr-defined]
