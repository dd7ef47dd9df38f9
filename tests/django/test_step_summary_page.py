"""GITHUB_STEP_SUMMARY on the build page: rendered as Markdown, and nothing a
pushed summary carries (script, handlers, javascript: links, raw HTML,
images) reaches the page as markup."""

from __future__ import annotations

import hashlib
import time
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from sauci.core.models import Artifact, BuildRequest, Status, StepRun
from sauci.core.paths import artifact_dir

PATH = ".sauci-gha/test/step-summary.md"

HOSTILE = """\
## Results **3 passed**

| suite | result |
|:------|-------:|
| unit  | ok     |

<script>alert("raw")</script>
<img src=x onerror=alert(1)>
<a href="https://evil.example" onclick="alert(2)">raw link</a>
[click](javascript:alert(3)) [data](data:text/html;base64,PHNjcmlwdD4=)
[vb](vbscript:msgbox) [ok](https://example.org/report)
![tracker](https://evil.example/pixel.png)
<iframe src="https://evil.example"></iframe>
"""


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag in ``html`` with its attributes, as a browser's parser sees them."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Parser().feed("<div " + html)
    return found


def _build_with_summary(store, tmp_path, text: str, *, path: str = PATH):
    build = store.create_build(BuildRequest(repo="/srv/app.git", ref="refs/heads/main"))
    now = time.time()
    store.update_build(build.id, status=Status.PASSED, started_at=now - 2, finished_at=now)
    store.save_step(
        StepRun(build_id=build.id, name="test", position=0, status=Status.PASSED, exit_code=0)
    )
    target = (
        artifact_dir(tmp_path / "artifacts", build.repo, build.id, "test", uuid=build.uuid) / path
    )
    target.parent.mkdir(parents=True)
    target.write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    store.add_artifacts(build.id, "test", [Artifact(path=path, size=len(text), sha256=digest)])
    return build


@pytest.fixture
def app_store(settings, tmp_path):
    from sauci.storage.memory import MemoryStore

    fresh = MemoryStore()
    settings.SAUCI = {"STORE": fresh, "DATA_DIR": str(tmp_path)}
    return fresh


@pytest.mark.django_db
def test_a_summary_is_rendered_as_markdown_and_its_markup_is_neutralised(
    viewer_client, app_store, tmp_path
):
    build = _build_with_summary(app_store, tmp_path, HOSTILE)
    page = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert "test: job summary" in page
    assert "<h2>Results <strong>3 passed</strong></h2>" in page
    assert "<table>" in page and "<td" in page and ">unit</td>" in page
    assert '<a href="https://example.org/report" rel="noopener noreferrer nofollow">ok</a>' in page
    section = page.split('class="step-summary"', 1)[1].split("</section>", 1)[0]
    tags = _tags(section)
    assert {"a", "div", "h2", "p", "strong", "table"} <= {t for t, _ in tags}
    assert not {"script", "img", "iframe"} & {t for t, _ in tags}
    for tag, attrs in tags:
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)
        for name, value in attrs:
            if name == "href":
                assert (value or "").startswith("https://example.org"), value
    assert "&lt;script&gt;" in section  # raw HTML is shown as text


@pytest.mark.django_db
def test_only_the_job_driver_s_summary_file_is_rendered(viewer_client, app_store, tmp_path):
    build = _build_with_summary(app_store, tmp_path, "# not a summary", path="docs/README.md")
    page = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert "job summary" not in page and "<h1>not a summary" not in page


@pytest.mark.django_db
def test_a_summary_linked_out_of_the_artifacts_is_not_read(viewer_client, app_store, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("# host secret")
    build = _build_with_summary(app_store, tmp_path, "x")
    target = (
        artifact_dir(tmp_path / "artifacts", build.repo, build.id, "test", uuid=build.uuid) / PATH
    )
    target.unlink()
    target.symlink_to(secret)
    page = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert "host secret" not in page
