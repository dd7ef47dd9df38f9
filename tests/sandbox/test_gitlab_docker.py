"""A .gitlab-ci.yml job with `image:` and `services:` run by the Docker
sandbox (a private dockerd, the local busybox image, which has no bash: the
job falls back to sh as GitLab's runner does)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.testing.sandbox import MemoryLog
from sauci.workflows.gitlab import GitLabContext, load_gitlab

OWNER = "sauci-test-gitlab"

PIPELINE = """
variables:
  GREETING: hello
job:
  image: sauci-test/busybox:latest
  services:
    - name: sauci-test/busybox:latest
      alias: web
      command: ["sh", "-c", "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www"]
  before_script:
    - echo "$GREETING from $CI_JOB_NAME in $CI_PROJECT_DIR"
  script:
    - for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://127.0.0.1:8080/ && break; sleep 0.5; done
    - test "$SAUCI_SERVICE_WEB_HOST" = 127.0.0.1
    - echo "by alias $(wget -q -O- http://web:8080/)"
    - exit 4
  after_script:
    - echo "after $CI_JOB_STATUS"
"""


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    yield sandbox
    sandbox.sweep(OWNER)
    sandbox.close()


def test_a_gitlab_job_runs_in_its_image_beside_its_service(sandbox: Any, tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    step = load_gitlab(tmp_path, context=GitLabContext()).steps[0]
    assert step.image == "sauci-test/busybox:latest"
    assert [s.name for s in step.services] == ["web"]
    log = MemoryLog()
    result = sandbox.run(
        step,
        tmp_path,
        log,
        env={**step.env, "PATH": "/bin"},
        cancel=threading.Event(),
        label="gitlab",
    )
    output = bytes(log.data).decode()
    assert result.exit_code == 4, output  # the script's status, not after_script's
    assert "hello from job in " in output
    assert "served" in output
    assert "by alias served" in output  # the service's alias resolves in the job
    # after_script runs after the attempt, as the step executor runs it, in
    # the job's image beside its service again; it never changes the status.
    from sauci.core.after_run import run_after

    after = run_after(sandbox, step, tmp_path, log, {**step.env, "PATH": "/bin"}, result, "gitlab")
    assert after is not None and after.exit_code == 0, bytes(log.data).decode()
    assert "after failed" in bytes(log.data).decode()
