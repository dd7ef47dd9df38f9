"""``cache: {skip_on_hit: true}``: an exact hit skips the step's run and keeps
the restored files for the steps after it; a miss, a restore-key hit or a
restored link that points nowhere runs the step; other repositories' and
branches' entries are reached no more than by any cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauci import Settings, run_pipeline
from sauci.core.pipeline import dump_pipeline, parse_pipeline
from sauci.exceptions import PipelineError

PIPELINE = """\
steps:
  install:
    run: |
      echo "install ran"
      mkdir -p out
      echo "made from $(cat dep.txt)" > out/marker
      ln -sf "$PWD/dep.txt" out/link
    cache:
      paths: [out]
      key: "out-${{ hashFiles('dep.txt') }}"
      restore_keys: [out-]
      skip_on_hit: true
  test:
    needs: [install]
    run: cat out/marker
"""


def _build(
    tmp_path: Path, name: str, dep: str = "a", repo: str = "demo", ref: str = "refs/heads/main"
):
    ws = tmp_path / name
    ws.mkdir()
    (ws / "dep.txt").write_text(dep)
    outcome = run_pipeline(
        parse_pipeline(PIPELINE),
        ws,
        settings=Settings(data_dir=tmp_path / "data"),
        repo=repo,
        ref=ref,
    )
    install, test = outcome.steps
    logs = [Path(s.log_path or "").read_text() for s in (install, test)]
    for s in (install, test):  # the next build of the in-memory store reuses the name
        Path(s.log_path or "").unlink()
    return install, test, logs


def test_an_exact_hit_skips_the_run_and_keeps_the_restored_files(tmp_path: Path):
    first, _, (log, _) = _build(tmp_path, "ws1")
    assert "passed" == first.status
    assert "install ran" in log  # a miss runs
    assert first.reason is not None and first.reason.startswith("cache miss out-")

    second, test, (log, test_log) = _build(tmp_path, "ws2")
    assert "passed" == second.status
    assert "install ran" not in log
    assert "run skipped (skip_on_hit)" in (second.reason or "")
    assert second.exit_code == 0
    assert "passed" == test.status
    assert "made from a" in test_log  # the restored files reached the next step


def test_a_restore_key_hit_runs_the_step_and_saves(tmp_path: Path):
    _build(tmp_path, "ws1")
    partial, _, (log, test_log) = _build(tmp_path, "ws2", dep="b")
    assert "install ran" in log
    reason = partial.reason or ""
    assert "cache miss" in reason and "restored out-" in reason and "saved" in reason
    assert "skipped" not in reason
    assert "made from b" in test_log
    again, _, (log, _) = _build(tmp_path, "ws3", dep="b")
    assert "install ran" not in log  # the new key was saved, and now hits
    assert "run skipped" in (again.reason or "")


def test_a_restored_link_that_points_nowhere_runs_the_step_and_saves_again(tmp_path: Path):
    _build(tmp_path, "ws1")  # out/link -> ws1/dep.txt, absolute
    os.unlink(tmp_path / "ws1" / "dep.txt")  # as an interpreter a venv names, gone
    step, test, (log, _) = _build(tmp_path, "ws2")
    assert "install ran" in log
    assert "out/link points nowhere; running the step" in log
    assert "saved" in (step.reason or "")
    assert "passed" == test.status
    third, _, (log, _) = _build(tmp_path, "ws3")
    assert "install ran" not in log  # saved again with a link that resolves
    assert "run skipped" in (third.reason or "")


def test_another_repositorys_entry_is_never_a_hit(tmp_path: Path):
    _build(tmp_path, "ws1", repo="demo")
    step, _, (log, _) = _build(tmp_path, "ws2", repo="evil")
    assert "install ran" in log
    assert (step.reason or "").startswith("cache miss")


def test_a_branchs_entry_does_not_skip_the_default_branchs_run(tmp_path: Path):
    _build(tmp_path, "ws1", ref="refs/heads/feature")
    step, _, (log, _) = _build(tmp_path, "ws2", ref="refs/heads/main")
    assert "install ran" in log
    assert (step.reason or "").startswith("cache miss")


def test_skip_on_hit_must_be_a_boolean_at_its_line_and_column():
    text = PIPELINE.replace("skip_on_hit: true", "skip_on_hit: sometimes")
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(text)
    assert ".sauci.yml:12:20:" in str(caught.value)
    assert "expected true or false" in str(caught.value)


def test_skip_on_hit_is_off_by_default_and_survives_a_dump():
    assert (
        parse_pipeline(PIPELINE.replace("      skip_on_hit: true\n", "")).steps[0].cache.skip_on_hit
        is False
    )  # type: ignore[union-attr]
    again = parse_pipeline(dump_pipeline(parse_pipeline(PIPELINE)))
    assert again.steps[0].cache.skip_on_hit is True  # type: ignore[union-attr]


def test_a_link_into_a_path_the_sandbox_hides_counts_as_broken(tmp_path: Path):
    """Whether a hidden host file exists never decides the skip: a pipeline
    learns nothing of it (the namespace sandbox's ``hide``)."""
    from sauci.core._step_cache import CacheState, skip_run
    from sauci.core.cache_store import CacheEntry

    secret = tmp_path / "hidden" / "secret"
    secret.parent.mkdir()
    secret.write_text("x")
    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    (ws / "out" / "link").symlink_to(secret)
    step = parse_pipeline(PIPELINE).steps[0]
    entry = CacheEntry(key="k", branch="main", path=tmp_path / "k.tar", size=1, used=0.0)
    hit = CacheState(key="k", hit=True, restored=entry)
    lines: list[str] = []
    assert skip_run(hit, step, ws, {}, lines.append, hidden=(str(ws),)).skipped  # whole
    inside = (str(ws), str(tmp_path))  # a link into the workspace is checked as it is
    (ws / "out" / "link").unlink()
    (ws / "out" / "link").symlink_to(ws / "out")
    assert skip_run(hit, step, ws, {}, lines.append, hidden=inside).skipped
    (ws / "out" / "link").unlink()
    (ws / "out" / "link").symlink_to(secret)
    hidden = skip_run(hit, step, ws, {}, lines.append, hidden=(str(ws), str(secret.parent)))
    assert not hidden.skipped and not hidden.hit
    assert "sauci: cache: out/link points nowhere; running the step\n" == lines[-1]
