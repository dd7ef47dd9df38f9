"""`sauci serve` builds a pushed .gitlab-ci.yml (no .sauci.yml): the branch's
and the tag's pipelines as GitLab plans them, test results in the store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import Status
from sauci.core.server import Server, ServerOptions
from sauci.storage import open_store
from sauci.triggers import install_hook

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]

PIPELINE = """
stages: [test, release]
variables:
  REPORT: report.xml
test:
  parallel:
    matrix:
      - SUITE: [unit, slow]
  script:
    - echo "suite $SUITE on ${CI_COMMIT_BRANCH:-tag $CI_COMMIT_TAG} at $CI_COMMIT_SHORT_SHA"
    - printf '<testsuite><testcase classname="t" name="%s"/></testsuite>' "$SUITE" > "$REPORT"
  artifacts:
    reports:
      junit: $REPORT
release:
  stage: release
  script: [echo "releasing $CI_COMMIT_TAG"]
  rules:
    - if: $CI_COMMIT_TAG =~ /^v/
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")


def start_server(settings: Settings, repo: Path) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.store_url)
    install_hook(repo, settings.data_dir / "spool", "receive")
    server = build_server(
        store=store, settings=settings, repos=[str(repo)], options=ServerOptions()
    )
    server.start()
    return server


def test_a_pushed_gitlab_file_builds_per_branch_and_tag(tmp_path: Path, settings: Settings) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "ci")
    server = start_server(settings, bare)
    try:
        git(work, "push", "-q", "origin", "main")
        git(work, "tag", "v1.0")
        git(work, "push", "-q", "origin", "v1.0")

        def done():  # type: ignore[no-untyped-def]
            builds = server.store.list_builds(limit=10)
            return builds if len(builds) == 2 and all(b.status.done for b in builds) else None

        builds = wait_for(done, timeout=60)
    finally:
        server.stop()
    by_ref = {b.ref: b for b in builds}
    assert set(by_ref) == {"refs/heads/main", "refs/tags/v1.0"}
    for ref, expected in (
        ("refs/heads/main", ["test: [unit]", "test: [slow]"]),
        ("refs/tags/v1.0", ["test: [unit]", "test: [slow]", "release"]),
    ):
        build = by_ref[ref]
        assert build.status is Status.PASSED, build.reason
        steps = server.store.list_steps(build.id)
        assert [s.name for s in steps] == expected
        assert {s.status for s in steps} == {Status.PASSED}
        cases = server.store.list_test_results(build.id)
        assert sorted(case.name for _, case in cases) == ["slow", "unit"]
    unit = next(
        s for s in server.store.list_steps(by_ref["refs/heads/main"].id) if "unit" in s.name
    )
    assert "suite unit on main at " in Path(unit.log_path).read_text(encoding="utf-8")
    tagged = server.store.list_steps(by_ref["refs/tags/v1.0"].id)
    assert "releasing v1.0" in Path(tagged[-1].log_path).read_text(encoding="utf-8")
