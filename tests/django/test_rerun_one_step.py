"""Acting on a build: "Rerun" one step runs it again with the steps it needs and
keeps the other results; it needs the rerun permission and the CSRF token,
as "Rerun failed" and "Cancel" do. The last test clicks it in Chromium.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import test_browser_monitoring as monitoring_tests
from django.urls import reverse

from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Status, StepRun
from sauci.core.rerun import RERUN_STEP_PARAM

PIPELINE = """\
steps:
  install:
    run: echo ran >> ../ran-install && echo built > made-by-install
  test:
    needs: [install]
    run: test -e made-by-install && test -e ../flag-{tag}
  lint:
    needs: []
    run: echo ran >> ../ran-lint; exit 3
  deploy:
    needs: [test]
    run: echo ran >> ../ran-deploy
"""


def _repo(tmp_path):
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / ".sauci.yml").write_text(PIPELINE.format(tag=tmp_path.name))
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], cwd=repo, check=True)
    return repo


@pytest.mark.django_db
def test_rerun_one_step_runs_it_with_its_needs_and_keeps_the_rest(admin_client, store, tmp_path):
    repo = _repo(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=store, settings=settings)
    store.create_build(BuildRequest(repo=str(repo), ref="refs/heads/main"))
    first = runner.run_next()
    statuses = {s.name: s.status for s in store.list_steps(first.id)}
    assert {"install": Status.PASSED, "test": Status.FAILED, "lint": Status.FAILED} == {
        k: v for k, v in statuses.items() if k != "deploy"
    }
    assert statuses["deploy"] in (Status.SKIPPED, Status.CANCELLED)

    ws = settings.workspaces_dir
    (ws / f"flag-{tmp_path.name}").write_text("")
    response = admin_client.post(reverse("sauci:rerun", args=[first.id]), {"step": "test"})
    again = runner.run_next()
    assert reverse("sauci:build", args=[again.id]) == response["Location"]
    steps = {s.name: s for s in store.list_steps(again.id)}
    assert "test" == again.params[RERUN_STEP_PARAM]
    assert Status.PASSED == steps["test"].status and Status.PASSED == steps["deploy"].status
    assert "ran\nran\n" == (ws / "ran-install").read_text()  # its need ran again
    assert "ran\n" == (ws / "ran-lint").read_text()  # lint kept its failure, not run
    assert Status.FAILED == steps["lint"].status
    assert steps["lint"].reason.startswith(f"reused from build {first.id}")
    assert Status.FAILED == again.status  # lint still fails the build

    # Rerunning that rerun's failed steps is a plain "rerun failed" again.
    admin_client.post(reverse("sauci:rerun", args=[again.id]), {"failed_only": "1"})
    third = store.list_builds(limit=1)[0]
    assert RERUN_STEP_PARAM not in third.params and again.id == third.reuse_from


def _done_build(store):
    build = store.create_build(BuildRequest(repo="/srv/git/app.git", ref="refs/heads/main"))
    now = time.time()
    store.update_build(build.id, status=Status.FAILED, started_at=now - 5, finished_at=now)
    store.save_step(StepRun(build_id=build.id, name="unit", status=Status.FAILED, exit_code=1))
    return build


@pytest.mark.django_db
def test_a_step_the_build_lacks_queues_nothing(admin_client, store):
    build = _done_build(store)
    response = admin_client.post(
        reverse("sauci:rerun", args=[build.id]), {"step": "<b>nope</b>"}, follow=True
    )
    assert [build.id] == [b.id for b in store.list_builds()]
    assert "has no step &#x27;&lt;b&gt;nope&lt;/b&gt;&#x27;" in response.content.decode()


@pytest.mark.django_db
def test_rerun_one_step_needs_the_permission_and_the_csrf_token(
    viewer_client, store, client, admin
):
    build = _done_build(store)
    url = reverse("sauci:rerun", args=[build.id])
    assert 403 == viewer_client.post(url, {"step": "unit"}).status_code
    html = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert 'name="step"' not in html  # no button for who may not rerun
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin)
    assert 403 == strict.post(url, {"step": "unit"}).status_code
    assert [build.id] == [b.id for b in store.list_builds()]


@pytest.fixture
def admin_site(live_server, settings, django_user_model):
    from django.test import Client

    from sauci.storage.memory import MemoryStore

    store = MemoryStore()
    settings.SAUCI = {"STORE": store}
    root = django_user_model.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(root)
    return f"{live_server.url}/ci/", store, client.cookies["sessionid"].value


@monitoring_tests.in_browser
def test_in_chromium_the_rerun_button_of_a_step_queues_its_rerun(admin_site):
    base, store, session = admin_site
    build = _done_build(store)
    sync_playwright = monitoring_tests._need_browser()
    with sync_playwright() as pw:
        browser = monitoring_tests.launch_chromium(pw)
        try:
            tab = monitoring_tests.Tab(browser, base, session)
            page = tab.page
            page.goto(f"{base}builds/{build.id}/")
            page.get_by_role("button", name="Rerun unit").click()
            page.wait_for_url(f"**/builds/{build.id + 1}/")
            assert f"{RERUN_STEP_PARAM}=unit" in page.locator("dl.facts").inner_text()
            assert f"queued build #{build.id + 1}" in page.content()
            # "Rerun failed" of the first build, then "Cancel" of the queued rerun.
            page.goto(f"{base}builds/{build.id}/")
            page.get_by_role("button", name="Rerun failed").click()
            page.wait_for_url(f"**/builds/{build.id + 2}/")
            assert store.get_build(build.id + 2).reuse_from == build.id
            page.get_by_role("button", name="Cancel").click()
            page.wait_for_url(f"**/builds/{build.id + 2}/")
            assert f"build #{build.id + 2} cancelled" in page.content()
            assert Status.CANCELLED == store.get_build(build.id + 2).status
        finally:
            browser.close()
