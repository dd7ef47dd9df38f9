"""The UI's "Rerun failed" button takes the path `sauci rerun --failed` takes:
the failed step runs again with the steps it needs, the others are reused."""

from __future__ import annotations

import subprocess

import pytest
from django.urls import reverse

from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Status

PIPELINE = """\
steps:
  install:
    run: echo ran >> ../ran-install && echo built > made-by-install
  test:
    needs: [install]
    run: test -e made-by-install && test -e ../flag-{tag}
  lint:
    needs: []
    run: echo ran >> ../ran-lint
"""


@pytest.mark.django_db
def test_rerun_failed_button_runs_the_needs_chain_again(admin_client, store, tmp_path):
    repo = tmp_path / "app"
    repo.mkdir()
    tag = tmp_path.name  # flag files of other tests never match
    (repo / ".sauci.yml").write_text(PIPELINE.format(tag=tag))
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], cwd=repo, check=True)
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=store, settings=settings)
    store.create_build(BuildRequest(repo=str(repo), ref="refs/heads/main"))
    first = runner.run_next()
    assert first is not None and Status.FAILED == first.status

    ws_parent = settings.workspaces_dir
    (ws_parent / f"flag-{tag}").write_text("")
    admin_client.post(reverse("sauci:rerun", args=[first.id]), {"failed_only": "1"})
    again = runner.run_next()

    assert again is not None and Status.PASSED == again.status, again.reason
    steps = {s.name: s for s in store.list_steps(again.id)}
    assert "ran\nran\n" == (ws_parent / "ran-install").read_text()  # install ran again
    assert "ran\n" == (ws_parent / "ran-lint").read_text()  # lint was reused
    assert f"reused from build {first.id}" == steps["lint"].reason
