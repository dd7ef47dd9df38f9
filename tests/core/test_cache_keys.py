"""The ``cache:`` key of a step: parsed and checked at file:line:col, and its
key filled in from the workspace (hashFiles) and the step's matrix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauci.core.cache_key import CacheKeyError, hash_files, render_key
from sauci.core.pipeline import dump_pipeline, parse_pipeline
from sauci.core.step_parts import Cache
from sauci.exceptions import PipelineError

GOOD = """\
steps:
  install:
    run: python -m venv .venv
    cache:
      paths: [.venv, ~/.cache/x]
      key: "venv-${{ hashFiles('**/pyproject.toml', 'req*.txt') }}"
      restore_keys: [venv-]
"""


def _problems(cache_yaml: str) -> str:
    text = f"steps:\n  s:\n    run: 'true'\n    cache: {cache_yaml}\n"
    with pytest.raises(PipelineError) as info:
        parse_pipeline(text)
    return str(info.value)


def test_a_cache_is_read_and_dumped_back():
    pipeline = parse_pipeline(GOOD)
    expected = Cache(
        paths=(".venv", "~/.cache/x"),
        key="venv-${{ hashFiles('**/pyproject.toml', 'req*.txt') }}",
        restore_keys=("venv-",),
    )
    assert expected == pipeline.steps[0].cache
    assert pipeline == parse_pipeline(dump_pipeline(pipeline))


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        ("../x", "leaves the workspace"),
        ("a/../../b", "leaves the workspace"),
        ("/etc", "not absolute"),
        ("~root/x", "under the build's HOME"),
        ("~/../x", "leaves the build's HOME"),
        ("'~'", "under the build's HOME"),
        ("'*.txt'", "is a pattern"),
    ],
)
def test_hostile_paths_are_refused_where_written(path, fault):
    message = _problems(f"{{paths: [{path}], key: k}}")
    assert ".sauci.yml:4:" in message
    assert fault in message


@pytest.mark.parametrize(
    ("key", "fault"),
    [
        ("'${{ env.HOME }}'", "a cache key understands hashFiles"),
        ("\"v-${{ hashFiles('../x') }}\"", "must stay inside the workspace"),
        ("\"v-${{ hashFiles('/etc/passwd') }}\"", "must stay inside the workspace"),
        ("'a b'", "may hold only letters"),
        ("'a/b'", "may hold only letters"),
        ("'v-${{ hashFiles(x) }}'", "quoted globs"),
        ("'v-${{ matrix.x'", "unclosed"),
        ("''", "is empty"),
    ],
)
def test_bad_keys_are_refused(key, fault):
    message = _problems(f"{{paths: [.venv], key: {key}}}")
    assert ".sauci.yml:4:" in message
    assert fault in message


def test_restore_keys_are_plain_prefixes():
    assert "cannot hold" in _problems("{paths: [a], key: k, restore_keys: ['a-${{ matrix.x }}']}")


def test_missing_and_unknown_keys():
    assert "'key' is required" in _problems("{paths: [a]}")
    assert "'paths' is required" in _problems("{key: k}")
    assert "unknown key 'path'" in _problems("{path: [a], key: k}")


def test_hash_files_follows_contents_and_only_the_workspace(tmp_path: Path):
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / "pyproject.toml").write_text("a")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", ws / "link.toml")  # never followed
    first = hash_files(ws, ["**/*.toml"])
    assert first == hash_files(ws, ["**/pyproject.toml"])
    (tmp_path / "secret").write_text("changed")
    assert first == hash_files(ws, ["**/*.toml"])
    (ws / "sub" / "pyproject.toml").write_text("b")
    assert first != hash_files(ws, ["**/*.toml"])
    with pytest.raises(CacheKeyError):
        hash_files(ws, ["../secret"])


def test_render_key_fills_in_hash_and_matrix(tmp_path: Path):
    (tmp_path / "req.txt").write_text("six\n")
    digest = hash_files(tmp_path, ["req.txt"])
    key = "v-${{ matrix.py }}-${{ hashFiles('req.txt') }}"
    assert f"v-3.12-{digest}" == render_key(key, tmp_path, {"py": "3.12"})
    assert "v-a_b" == render_key("v-${{ matrix.x }}", tmp_path, {"x": "a/b"})
    with pytest.raises(CacheKeyError, match=r"no matrix\.py"):
        render_key(key, tmp_path, {})


def test_hash_files_over_a_sparse_file_is_refused_at_once(tmp_path: Path) -> None:
    """Hostile: an earlier step of the build makes a 64 GiB sparse file (it
    costs that step nothing) and the next step's key hashes it: the server
    read 64 GiB of zeros in its own thread. The files a key hashes are capped
    together; over the cap the key is refused (the step runs without its cache)."""
    from sauci.core.cache_key import MAX_HASHED

    (tmp_path / "lock.txt").write_text("pinned\n")
    with (tmp_path / "huge.bin").open("wb") as fh:
        fh.truncate(64 * 1024**3)
    with pytest.raises(CacheKeyError, match=r"hold more than 2 GiB \(huge\.bin among them\)"):
        render_key("k-${{ hashFiles('*.bin', 'lock.txt') }}", tmp_path)
    assert 2 * 1024**3 == MAX_HASHED
    assert render_key("k-${{ hashFiles('lock.txt') }}", tmp_path).startswith("k-")


def test_hash_files_counts_every_file_together(tmp_path: Path, monkeypatch) -> None:
    import sauci.core.cache_key as cache_key

    monkeypatch.setattr(cache_key, "MAX_HASHED", 10)
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text("1234\n")  # 5 bytes each
    assert hash_files(tmp_path, ["a.txt", "b.txt"])
    with pytest.raises(CacheKeyError, match=r"\(c\.txt among them\)"):
        hash_files(tmp_path, ["*.txt"])
