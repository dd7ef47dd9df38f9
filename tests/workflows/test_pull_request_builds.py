"""Pull-request builds of a project's own workflow files: ``on.pull_request``
branch filters on the base branch and ``paths`` on the files changed since
the merge base, the ``github`` context of a pull request, GitLab's
merge-request pipeline variables in ``rules``, and end to end under a real
server: a webhook delivery of a fork's pull request built from the base
repository's ``refs/pull/N/head`` through the mirror."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from pathlib import Path

import pytest
from polling import wait_for

from sauci.core.models import Build, Status
from sauci.core.pull_requests import PullRequest
from sauci.workflows import load_for_build

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
MARKER = Path("/tmp/sauci-pr-test-pwned")
HOSTILE_HEAD = f"feat/$(touch${{IFS}}{MARKER});<b>x</b>&`id`"

WORKFLOW = """\
name: CI
on:
  push:
    branches: [main]
  pull_request:
    branches: [main, "release/**"]
    paths: ["src/**"]
jobs:
  test:
    runs-on: ubuntu-latest
    if: github.event_name == 'pull_request'
    env:
      HEAD: ${{ github.head_ref }}
      TITLE: ${{ github.event.pull_request.title }}
    steps:
      - run: echo "pr=${{ github.event.pull_request.number }} into ${{ github.base_ref }}"
      - run: printf 'head=%s title=%s\\n' "$HEAD" "$TITLE"
      - run: printf 'env=%s/%s/%s\\n' "$SAUCI_PR_NUMBER" "$SAUCI_PR_BASE" "$SAUCI_PR_HEAD"
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def commit(repo: Path, path: str, text: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", f"change {path}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    commit(repo, "README.md", "hi")
    return repo


def pr_build(repo: Path, sha: str, base: str = "main", number: int = 3, **kw) -> Build:
    pr = PullRequest(number=number, base=base, head=HOSTILE_HEAD, title="<i>t</i> $(id)")
    return Build(
        id=9, repo=str(repo), ref=f"refs/pull/{number}/head", sha=sha, event="pull_request",
        params=pr.params(), **kw,
    )  # fmt: skip


def test_a_pull_request_into_main_changing_src_runs_with_its_context(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "src/a.py", "x = 1\n")
    head = commit(repo, "docs/a.md", "docs")  # the merge base is main's tip: both files count
    (step,) = load_for_build(repo, pr_build(repo, head)).steps
    assert step.condition is None
    assert "pull_request" in step.when.events
    spec = json.loads(step.script())
    assert "pr=3 into main" in json.dumps(spec["steps"])
    assert {"HEAD": HOSTILE_HEAD, "TITLE": "<i>t</i> $(id)"}.items() <= spec["env"].items()


def test_base_branch_and_paths_filters_say_why_a_request_starts_nothing(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    docs = commit(repo, "docs/a.md", "docs")
    (step,) = load_for_build(repo, pr_build(repo, docs)).steps
    assert "skipped: on.pull_request.paths: none of the 1 changed files matches" == (
        step.condition.reason
    )
    code = commit(repo, "src/a.py", "x = 1\n")
    git(repo, "branch", "develop", "main")
    (step,) = load_for_build(repo, pr_build(repo, code, base="develop")).steps
    assert "skipped: on.pull_request.branches: 'develop' matches none of its patterns" == (
        step.condition.reason
    )
    git(repo, "branch", "release/2.x", "main")
    (step,) = load_for_build(repo, pr_build(repo, code, base="release/2.x")).steps
    assert step.condition is None


def test_a_push_build_of_the_same_workflow_is_not_a_pull_request(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    build = Build(id=1, repo=str(repo), ref="refs/heads/main", sha=sha, event="push")
    (step,) = load_for_build(repo, build).steps
    assert "skipped: 'if: github.event_name == 'pull_request'' is false" == step.condition.reason


def test_a_workflow_without_on_pull_request_is_not_run_for_one(repo: Path) -> None:
    (repo / ".github" / "workflows" / "ci.yml").write_text(
        WORKFLOW.replace(
            '  pull_request:\n    branches: [main, "release/**"]\n    paths: ["src/**"]\n',
            "  workflow_dispatch:\n",
        )
    )
    head = commit(repo, "src/a.py", "x = 2\n")
    (step,) = load_for_build(repo, pr_build(repo, head)).steps
    assert "pull_request" not in step.when.events


GITLAB = """\
test:
  script: echo "$CI_MERGE_REQUEST_IID $CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event" && $CI_MERGE_REQUEST_TARGET_BRANCH_NAME == "main"
deploy:
  script: echo deploy
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
"""


def test_gitlab_merge_request_pipelines_have_their_variables_and_source(tmp_path: Path) -> None:
    repo = tmp_path / "lab"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(GITLAB)
    git(repo, "init", "-q", "-b", "main")
    head = commit(repo, "src/a.py", "x")
    build = pr_build(repo, head, number=5)
    build = Build(**{**{a: getattr(build, a) for a in ("id", "repo", "sha", "event", "params")},
                     "ref": "refs/merge-requests/5/head"})  # fmt: skip
    steps = {s.name: s for s in load_for_build(repo, build).steps}
    assert ["test"] == list(steps)  # deploy's rule needs a branch pipeline
    env = steps["test"].env
    assert {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "5",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": HOSTILE_HEAD,  # a value, never script text
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_COMMIT_REF_NAME": HOSTILE_HEAD,
    }.items() <= env.items()
    assert "CI_COMMIT_BRANCH" not in env  # as in GitLab's merge-request pipelines
    assert HOSTILE_HEAD not in steps["test"].script()
    push = Build(id=2, repo=str(repo), ref="refs/heads/main", sha=head, event="push")
    assert ["deploy"] == [s.name for s in load_for_build(repo, push).steps]


SECRET = "s3cret"


def deliver(repo_url: str, number: int, head_sha: str, base_sha: str) -> list:
    from sauci.triggers import handle_webhook

    body = json.dumps({
        "action": "opened", "number": number,
        "pull_request": {
            "number": number, "title": "<script>alert(1)</script>",
            "head": {"ref": HOSTILE_HEAD, "sha": head_sha,
                     "repo": {"clone_url": "file:///nonexistent/fork.git"}},
            "base": {"ref": "main", "sha": base_sha, "repo": {"clone_url": repo_url}},
        },
        "repository": {"clone_url": repo_url}, "sender": {"login": "forker"},
    }).encode()  # fmt: skip
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": f"d-{number}",
               "X-Hub-Signature-256": f"sha256={digest}"}  # fmt: skip
    result = handle_webhook(headers, body, secret=SECRET, seen=lambda d: False)
    assert 202 == result.status, result.message
    return result.requests


@pytest.mark.slow
def test_a_forks_pull_request_is_built_from_the_base_repositorys_pull_ref(
    repo: Path, tmp_path: Path
) -> None:
    from sauci.app.server import build_server
    from sauci.core.config import Settings
    from sauci.core.scheduler import Scheduler
    from sauci.core.server import ServerOptions
    from sauci.storage import open_store

    MARKER.unlink(missing_ok=True)
    base_sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "fork-work")
    head = commit(repo, "src/a.py", "x = 1\n")
    forge = tmp_path / "forge.git"  # what GitHub keeps: the head only under refs/pull/
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(forge)], check=True)
    git(forge, "update-ref", "refs/pull/12/head", head)
    git(forge, "branch", "-D", "fork-work")
    url = f"file://{forge}"
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    settings.data_dir.mkdir(parents=True)
    store = open_store(settings.store_url)
    server = build_server(store=store, settings=settings, repos=[], options=ServerOptions())
    server.start()
    try:
        (request,) = deliver(url, 12, head, base_sha)
        build = Scheduler(store).enqueue(request)
        done = wait_for(
            lambda: store.get_build(build.id).status.done and store.get_build(build.id),
            "the pull request's build to end",
        )
        (step,) = store.list_steps(build.id)
        log = Path(step.log_path).read_text()
        assert Status.PASSED == done.status, (done.reason, step.reason, log)
        assert ("refs/pull/12/head", head, "pull_request") == (done.ref, done.sha, done.event)
        assert "pr=12 into main" in log
        assert f"head={HOSTILE_HEAD} title=<script>alert(1)</script>" in log
        assert f"env=12/main/{HOSTILE_HEAD}" in log
        assert not MARKER.exists()  # the branch name never ran
        mirror = next((settings.data_dir / "mirrors").glob("forge-*.git"))
        assert head == git(mirror, "rev-parse", "refs/pull/12/head")
    finally:
        server.stop(timeout=10)


def test_a_rerun_of_a_pull_request_build_is_still_a_pull_request(repo: Path) -> None:
    import attrs

    git(repo, "checkout", "-q", "-b", "feature")
    head = commit(repo, "src/a.py", "x = 1\n")
    rerun = attrs.evolve(pr_build(repo, head), event="rerun")  # Scheduler.rerun keeps params
    (step,) = load_for_build(repo, rerun).steps
    assert step.condition is None
    assert "pr=3 into main" in step.script()


def test_the_usual_pull_request_concurrency_group_reads_the_head_branch(repo: Path) -> None:
    from sauci.source.git import read_file
    from sauci.storage.memory import MemoryStore
    from sauci.workflows import ConcurrencyGate

    (repo / ".github" / "workflows" / "ci.yml").write_text(
        WORKFLOW.replace(
            "jobs:\n",
            "concurrency:\n  group: ${{ github.workflow }}-${{ github.head_ref || github.run_id }}\n"
            "  cancel-in-progress: true\njobs:\n",
        )
    )
    head = commit(repo, "src/a.py", "x = 3\n")
    gate = ConcurrencyGate(MemoryStore(), read_file)
    assert (f"CI-{HOSTILE_HEAD}", True) == gate.group_of(pr_build(repo, head))
    push = Build(id=7, repo=str(repo), ref="refs/heads/main", sha=head, event="push")
    assert ("CI-7", True) == gate.group_of(push)
