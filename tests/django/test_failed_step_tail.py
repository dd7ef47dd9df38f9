"""A failed step's last log lines on the build page: shown, cleaned and escaped."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from sauci.core.models import BuildRequest, Status, StepRun


def _failed_build(store, log: bytes, *, reason: str = "exit code 1", log_path=None):
    build = store.create_build(BuildRequest(repo="/srv/app.git", ref="refs/heads/main"))
    now = time.time()
    store.update_build(build.id, status=Status.FAILED, started_at=now - 2, finished_at=now)
    for i, (name, status) in enumerate((("lint", Status.PASSED), ("test", Status.FAILED))):
        store.save_step(
            StepRun(
                build_id=build.id,
                name=name,
                position=i,
                status=status,
                reason=None if status is Status.PASSED else reason,
                exit_code=0 if status is Status.PASSED else 1,
                started_at=now - 1,
                finished_at=now,
                log_path=log_path,
                log_bytes=len(log),
            )
        )
        store.append_log(build.id, name, b"lint output that passed\n" if i == 0 else log)
    return build


@pytest.mark.django_db
def test_the_last_lines_of_a_failed_step_are_escaped_on_the_page(viewer_client, store):
    """Hostile: the log (pushed code's output) carries markup and escape sequences."""
    log = b"".join(b"noise %d\n" % i for i in range(50)) + (
        b'\x1b[31m<script>alert("x")</script>\x1b[0m\n<img src=x onerror=alert(1)>\nE   assert 1 == 2\n'
    )
    build = _failed_build(store, log)
    text = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert "test: the last 20 lines of its log" in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "\x1b" not in text
    assert "E   assert 1 == 2" in text
    assert "noise 33" in text and "noise 32\n" not in text  # only the last 20
    assert "lint output" not in text  # passed steps show no tail


@pytest.mark.django_db
def test_the_network_note_is_on_the_page(viewer_client, store):
    reason = "exit code 1; network is off for this step (server policy)"
    build = _failed_build(store, b"Could not resolve host: pypi.org\n", reason=reason)
    text = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert reason in text
    assert "Could not resolve host: pypi.org" in text


@pytest.mark.django_db
def test_the_tail_comes_from_the_log_file_when_it_is_on_this_machine(
    viewer_client, store, tmp_path
):
    log = tmp_path / "test.log"
    # As long as the stored log: a file of another size is not taken for the
    # log (sauci.core.logfile), the store's copy is read then.
    log.write_bytes(b"from the file!\n")
    build = _failed_build(store, b"from the store\n", log_path=str(log))
    text = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert "from the file!" in text and "from the store" not in text
