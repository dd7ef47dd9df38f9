"""A GitHub job with `container:` and `services:` run by the Docker sandbox
(a private dockerd): the job driver runs in the job's image with that
image's python3 and SauCI's expressions mounted read-only, and reaches its
service by the service's id as host name.

The image with a Python is conftest.py's ``python_image``.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.testing.sandbox import MemoryLog
from sauci.workflows.github import Settings, plan_github

OWNER = "sauci-test-gha-container"

WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    container:
      image: ${{ matrix.image }}
      env:
        FROM_CONTAINER: aboard
    strategy:
      matrix:
        image: [IMAGE]
    services:
      web:
        image: sauci-test/busybox-httpd:latest
        options: --health-cmd "wget -q -O- http://127.0.0.1:8080/" --health-interval 1s
        ports: ["8080"]
    steps:
      - id: where
        run: echo "os=$(. /etc/os-release; echo $ID)" >> "$GITHUB_OUTPUT"
      - shell: python3 {0}
        run: |
          import os, urllib.request
          body = urllib.request.urlopen("http://web:${{ job.services.web.ports['8080'] }}/").read()
          print("service says", body.decode().strip(), "to", "${{ steps.where.outputs.os }}", os.environ["FROM_CONTAINER"])
      - run: exit 3
"""


@pytest.fixture(scope="session")
def httpd_image(dockerd: str, busybox_image: str) -> str:
    """busybox's httpd serving one page: a service image with a command of its own."""
    import docker

    dockerfile = (
        b"FROM sauci-test/busybox:latest\n"
        b"RUN mkdir /www && echo served > /www/index.html\n"
        b'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    api = docker.APIClient(base_url=dockerd, version="auto", timeout=120)
    for _ in api.build(
        fileobj=io.BytesIO(out.getvalue()),
        custom_context=True,
        tag="sauci-test/busybox-httpd:latest",
        network_mode="none",
        rm=True,
    ):
        pass
    api.inspect_image("sauci-test/busybox-httpd:latest")
    return "sauci-test/busybox-httpd:latest"


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str, httpd_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    yield sandbox
    sandbox.sweep(OWNER)
    sandbox.close()


def run(sandbox: Any, workspace: Path, image: str) -> tuple[Any, str]:
    plan = plan_github(WORKFLOW.replace("IMAGE", image), Settings(workspace=workspace))
    step = plan.pipeline.steps[0]
    assert step.image == image and [s.name for s in step.services] == ["web"]
    log = MemoryLog()
    env = {**step.env, "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}
    result = sandbox.run(step, workspace, log, env=env, cancel=threading.Event(), label="gha")
    return result, bytes(log.data).decode()


def test_a_container_job_runs_in_its_image_and_reaches_its_service_by_name(
    sandbox: Any, python_image: str, tmp_path: Path
) -> None:
    result, output = run(sandbox, tmp_path, python_image)
    assert result.exit_code == 1, output  # the last step's exit 3 fails the job
    assert "service says" in output and "to debian aboard" in output, output
    assert "failed with exit code 3" in output


def test_an_image_without_python_is_named(sandbox: Any, debian_image: str, tmp_path: Path) -> None:
    result, output = run(sandbox, tmp_path, debian_image)
    assert result.exit_code == 127, output
    assert f"the job container image {debian_image} has no python3" in output


ALONE = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    container: IMAGE
    steps:
      - id: a
        run: echo "v=from-step-a" >> "$GITHUB_OUTPUT"
      - run: echo "pooled sees ${{ steps.a.outputs.v }}"
"""


def test_a_container_job_without_services_runs_in_the_builds_pooled_container(
    sandbox: Any, python_image: str, tmp_path: Path
) -> None:
    step = plan_github(ALONE.replace("IMAGE", python_image), Settings()).pipeline.steps[0]
    assert not step.services
    log = MemoryLog()
    env = {**step.env, "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}
    result = sandbox.run(step, tmp_path, log, env=env, cancel=threading.Event(), label="alone")
    output = bytes(log.data).decode()
    assert result.exit_code == 0, output
    assert "pooled sees from-step-a" in output
