"""The parsed-pipeline cache: a hit skips the parser, any change that could alter
the result misses, and a broken entry is only a miss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sauci.core.pipeline as pipeline_module
from sauci.core.pipeline import _cache, load_pipeline, parse_pipeline
from sauci.exceptions import PipelineError

RICH = """\
env:
  GLOBAL: "1"
schedule:
  - {cron: "0 3 * * *", branch: main}
steps:
  lint:
    run: [ruff check ., ruff format --check .]
    timeout: 5m
    when: {branches: [main, "!wip/*"], events: [push]}
  test:
    run: pytest -q
    needs: [lint]
    matrix: {py: ["3.11", "3.12"]}
    env: {PY: "${{ matrix.py }}"}
    retries: 2
    retry_on: [3]
    limits: {memory: 512MiB, processes: 64, cpu: 1.5}
    artifacts: [dist/*]
    junit: [report.xml]
    secrets: [TOKEN]
    allow_failure: true
  integration:
    run: ./integration.sh
    image: python:3.12
    services:
      - redis:7
      - {name: db, image: "postgres:16", env: {POSTGRES_PASSWORD: test}, ready: pg_isready}
"""


@pytest.fixture(autouse=True)
def fresh_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test computes the code fingerprint itself (some change the sources' stats)."""
    monkeypatch.setattr(_cache, "_code", None)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call of the real parser made through load_pipeline."""
    calls: list[str] = []
    real = pipeline_module.parse_pipeline

    def counting(text, filename=".sauci.yml", **kw):
        calls.append(filename)
        return real(text, filename, **kw)

    monkeypatch.setattr(pipeline_module, "parse_pipeline", counting)
    return calls


def test_a_hit_returns_an_equal_pipeline_without_parsing(tmp_path, cache_dir, monkeypatch):
    path = write(tmp_path / "a.yml", RICH)
    calls = count_parses(monkeypatch)
    first = load_pipeline(path, cache_dir=cache_dir)
    second = load_pipeline(path, cache_dir=cache_dir)
    assert [str(path)] == calls  # parsed once, then read from the cache
    assert first == second
    assert parse_pipeline(RICH, str(path)) == second
    assert str(path) == second.source


def test_the_same_file_elsewhere_hits_and_names_its_own_path(tmp_path, cache_dir, monkeypatch):
    """`sauci run` reads the file from a new workspace every time."""
    one = write(tmp_path / "one.yml", RICH)
    two = write(tmp_path / "two.yml", RICH)
    calls = count_parses(monkeypatch)
    load_pipeline(one, cache_dir=cache_dir)
    again = load_pipeline(two, cache_dir=cache_dir)
    assert [str(one)] == calls
    assert str(two) == again.source


def test_a_changed_file_misses(tmp_path, cache_dir, monkeypatch):
    path = write(tmp_path / "a.yml", "steps:\n  a:\n    run: echo one\n")
    calls = count_parses(monkeypatch)
    assert ("echo one",) == load_pipeline(path, cache_dir=cache_dir).steps[0].run
    write(path, "steps:\n  a:\n    run: echo two\n")
    assert ("echo two",) == load_pipeline(path, cache_dir=cache_dir).steps[0].run
    assert 2 == len(calls)


def test_rewritten_parser_sources_miss_even_with_their_old_mtime(tmp_path, cache_dir, monkeypatch):
    """Another version installed over this one (its files written again), even by
    a tool that keeps the files' modification times: the change time moves."""
    path = write(tmp_path / "a.yml", RICH)
    calls = count_parses(monkeypatch)
    load_pipeline(path, cache_dir=cache_dir)
    module = Path(_cache.__file__).with_name("_units.py")
    st = module.stat()
    module.write_bytes(module.read_bytes())
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert module.stat().st_mtime_ns == st.st_mtime_ns
    monkeypatch.setattr(_cache, "_code", None)
    load_pipeline(path, cache_dir=cache_dir)
    assert 2 == len(calls)


@pytest.mark.parametrize(
    "module",
    [
        Path(_cache.__file__).with_name("_units.py"),  # the parser
        Path(_cache.__file__).parents[1] / "models.py",  # the classes it is rebuilt from
        Path(_cache.__file__).parents[1] / "pipeline_parts.py",
    ],
    ids=lambda p: p.name,
)
def test_edited_sources_miss(tmp_path, cache_dir, monkeypatch, module):
    """An editable install keeps its version while its code changes."""
    path = write(tmp_path / "a.yml", RICH)
    calls = count_parses(monkeypatch)
    load_pipeline(path, cache_dir=cache_dir)
    st = module.stat()
    try:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        monkeypatch.setattr(_cache, "_code", None)
        load_pipeline(path, cache_dir=cache_dir)
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert 2 == len(calls)


def test_max_timeout_is_part_of_the_key(tmp_path, cache_dir):
    path = write(tmp_path / "a.yml", "steps:\n  a:\n    run: 'true'\n")
    assert 3600.0 == load_pipeline(path, cache_dir=cache_dir).steps[0].timeout
    assert 60.0 == load_pipeline(path, cache_dir=cache_dir, max_timeout=60).steps[0].timeout


def test_a_broken_entry_is_a_miss_and_is_replaced(tmp_path, cache_dir, monkeypatch):
    path = write(tmp_path / "a.yml", RICH)
    expected = load_pipeline(path, cache_dir=cache_dir)
    (entry,) = cache_dir.glob("*.json")
    for garbage in ("{not json", '{"!": "os.system", "f": {}}', '{"!": "Step", "f": {}}', "[]"):
        entry.write_text(garbage)
        assert expected == load_pipeline(path, cache_dir=cache_dir)
        assert entry.read_text() != garbage  # written again


def test_an_invalid_file_is_never_cached(tmp_path, cache_dir):
    path = write(tmp_path / "a.yml", "steps:\n  a:\n    rnu: x\n")
    for _ in range(2):
        with pytest.raises(PipelineError, match="rnu"):
            load_pipeline(path, cache_dir=cache_dir)
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


def test_an_unwritable_cache_only_costs_the_parse(tmp_path):
    path = write(tmp_path / "a.yml", RICH)
    blocker = write(tmp_path / "file", "")  # a file where the directory should be
    assert parse_pipeline(RICH, str(path)) == load_pipeline(path, cache_dir=blocker / "cache")


def test_the_cache_keeps_a_bounded_number_of_entries(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr(_cache, "_MAX_ENTRIES", 3)
    for i in range(6):
        path = write(tmp_path / f"{i}.yml", f"steps:\n  s{i}:\n    run: 'true'\n")
        load_pipeline(path, cache_dir=cache_dir)
    assert 3 == len(list(cache_dir.glob("*.json")))


def test_the_read_limit_is_the_parsers():
    from sauci.core.pipeline._yaml import MAX_BYTES

    assert MAX_BYTES == pipeline_module._MAX_BYTES


def test_a_hit_imports_neither_yaml_nor_the_parser(tmp_path, cache_dir):
    """What the cache is for: `sauci run` on a known file skips ~15 ms of imports."""
    path = write(tmp_path / "a.yml", RICH)
    code = (
        "import sys; from sauci.core.pipeline import load_pipeline; "
        f"load_pipeline({str(path)!r}, cache_dir={str(cache_dir)!r}); "
        "print(sorted(m for m in sys.modules if m == 'yaml' or m.endswith('._schema')))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert ["['sauci.core.pipeline._schema', 'yaml']", "[]"] == runs
