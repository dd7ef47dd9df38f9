"""The log page says so when a step's log file was changed on disk after the
step ended, its size kept (one byte flipped): the checksum recorded beside
the file finds it, and the page shows the store's copy under a warning."""

from __future__ import annotations

from pathlib import Path

from django.urls import reverse

from sauci import BuildRequest, Pipeline, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings

LOG = b"".join(b"line %d\n" % i for i in range(1, 201))


def test_the_page_warns_and_shows_the_stored_log(store, viewer_client, tmp_path):
    runner = LocalRunner(store=store, settings=Settings(data_dir=tmp_path / "data"), secrets={})
    (tmp_path / "ws").mkdir()
    pipeline = Pipeline(steps=[Step(name="talk", run="seq -f 'line %g' 1 200; exit 1")])
    build = runner.run_pipeline(pipeline, tmp_path / "ws", BuildRequest(repo="/r")).build
    url = reverse("sauci:log", args=[build.id, "talk"])
    assert "no longer matches" not in viewer_client.get(url).content.decode()

    path = Path(store.list_steps(build.id)[0].log_path)
    with open(path, "r+b") as fh:
        fh.seek(LOG.index(b"line 199") + 5)
        fh.write(b"7")  # "line 199" -> "line 799", same size
    response = viewer_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html and "no longer matches the checksum" in html
    assert "showing the store&#x27;s copy instead" in html
    assert "line 199" in html and "line 799" not in html
