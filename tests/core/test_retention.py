"""Retention deletes old builds' log and artifact directories, by count and by age."""

from __future__ import annotations

import os

from sauci.core.config import load_settings
from sauci.core.retention import prune


def make(data, kind, repo, build, mtime):
    d = data / kind / repo / str(build)
    d.mkdir(parents=True)
    (d / "step.log").write_text("x")
    os.utime(d, (mtime, mtime))
    return d


def test_keeps_the_last_n_builds_of_each_repository(tmp_path):
    dirs = {(r, b): make(tmp_path, "logs", r, b, 1000.0) for r in ("a", "b") for b in (1, 2, 10)}
    art = make(tmp_path, "artifacts", "a", 1, 1000.0)
    removed = prune(tmp_path, keep_builds=2, now=2000.0)
    assert sorted(removed) == sorted([dirs[("a", 1)], dirs[("b", 1)], art])
    assert dirs[("a", 10)].exists() and dirs[("a", 2)].exists()  # 10 > 2 numerically


def test_deletes_builds_older_than_the_age_limit(tmp_path):
    old = make(tmp_path, "logs", "a", 1, 0.0)
    new = make(tmp_path, "logs", "a", 2, 86400 * 9.5)
    assert prune(tmp_path, keep_days=1, now=86400 * 10) == [old]
    assert new.exists()


def test_nothing_is_deleted_without_a_policy(tmp_path):
    make(tmp_path, "logs", "a", 1, 0.0)
    assert prune(tmp_path) == []


def test_retention_settings(tmp_path):
    s = load_settings(cwd=tmp_path, environ={"SAUCI_KEEP_BUILDS": "50", "SAUCI_KEEP_DAYS": "30"})
    assert (s.keep_builds, s.keep_days) == (50, 30.0)


def test_a_store_serving_logs_from_files_takes_them_in_first(tmp_path):
    from sauci.core.models import BuildRequest
    from sauci.storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "sauci.db")
    try:
        old = store.create_build(BuildRequest(repo="a"))
        new = store.create_build(BuildRequest(repo="a"))
        for build in (old, new):
            d = make(tmp_path, "logs", "a", build.id, 1000.0)
            log = d / "step.log"
            log.write_bytes(b"line of build %d\n" % build.id)
            assert store.record_log_file(build.id, "step", str(log), size=log.stat().st_size)
        removed = prune(tmp_path, keep_builds=1, now=2000.0, before_delete=store.absorb_log_files)
        assert removed == [tmp_path / "logs" / "a" / str(old.id)]
        assert store.read_log(old.id, "step") == b"line of build %d\n" % old.id
    finally:
        store.close()


def test_a_build_whose_logs_the_store_cannot_take_is_kept(tmp_path):
    from sauci.exceptions import StoreError

    kept = make(tmp_path, "logs", "a", 1, 0.0)
    make(tmp_path, "logs", "a", 2, 0.0)

    def refuse(build_id):
        if build_id == 1:
            raise StoreError("the store is down")

    removed = prune(tmp_path, keep_builds=0, now=10.0, before_delete=refuse)
    assert removed == [tmp_path / "logs" / "a" / "2"]
    assert kept.exists()


def test_artifacts_in_a_shared_directory_are_pruned_too(tmp_path):
    shared = tmp_path / "shared"
    make(tmp_path / "data", "logs", "a", 1, 0.0)
    art = make(shared, "artifacts", "a", 1, 0.0)
    removed = prune(tmp_path / "data", keep_builds=0, artifacts_dir=shared / "artifacts")
    assert art in removed and not art.exists()


def test_after_a_database_reset_the_old_builds_go_first_not_the_new(tmp_path):
    # ids start again after a reset: old 1..3 (with and without a uuid) share
    # numbers with the new builds 1 and 2, which are the ones to keep.
    old = [make(tmp_path, "logs", "a", b, 1000.0 + b) for b in (1, 2)]
    old.append(make(tmp_path, "logs", "a", "3-aaaa", 1003.0))
    new = [make(tmp_path, "logs", "a", f"{b}-bbbb{b}", 5000.0 + b) for b in (1, 2)]
    art = make(tmp_path, "artifacts", "a", "1-bbbb1", 5001.0)
    removed = prune(tmp_path, keep_builds=2, now=6000.0)
    assert sorted(removed) == sorted(old)
    assert all(d.exists() for d in [*new, art])
    # by age, build 1's logs and artifacts go together
    assert sorted(prune(tmp_path, keep_days=1, now=5002.0 + 86400)) == sorted([new[0], art])
    assert new[1].exists()
