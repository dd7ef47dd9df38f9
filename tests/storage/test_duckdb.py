"""DuckDBStore: the conformance suite, the state machine, and its analytics."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from sauci.core.models import BuildRequest, Status
from sauci.storage import open_store
from sauci.testing import StoreConformance, make_store_state_machine

pytest.importorskip("duckdb")

from sauci.storage.duckdb import DuckDBStore


class TestDuckDBStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[DuckDBStore]:
        s = DuckDBStore(tmp_path / "sauci.duckdb")
        yield s
        s.close()


def test_duckdb_store_behaves_like_memory_store() -> None:
    run_state_machine_as_test(
        make_store_state_machine(lambda clock: DuckDBStore(":memory:", clock=clock)),
        settings=settings(
            max_examples=30,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_data_survives_reopening_and_open_store_finds_it(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'x.duckdb'}"
    store = open_store(url)
    build = store.create_build(BuildRequest(repo="r"))
    store.close()
    again = open_store(url)
    assert isinstance(again, DuckDBStore)
    assert build == again.get_build(build.id)
    again.close()


def test_duration_trend_buckets_failure_rate_and_duration() -> None:
    times = itertools.count(0.0, 3600.0 * 12)  # two builds a day
    store = DuckDBStore(clock=lambda: next(times))
    for i in range(4):
        b = store.create_build(BuildRequest(repo="r"))
        status = Status.FAILED if i % 2 else Status.PASSED
        store.update_build(b.id, status=status, started_at=0.0, finished_at=float(10 * (i + 1)))
    expected = [
        {"start": 0.0, "builds": 2, "failure_rate": 0.5, "mean_duration": 15.0},
        {"start": 86400.0, "builds": 2, "failure_rate": 0.5, "mean_duration": 35.0},
    ]
    assert expected == store.duration_trend()
    store.close()


def test_bench_stores_reports_every_measure_and_draws_a_chart(tmp_path: Path) -> None:
    # (bench.py's test: here until tests/storage/test_bench.py exists)
    from sauci.storage.bench import bench_stores, format_table, write_svg

    urls = ["memory://", f"duckdb:///{tmp_path / 'b.duckdb'}"]
    results = bench_stores(urls, builds=5, steps=2, log_kib=100, progress=None)
    assert ["memory", "duckdb"] == [r["store"] for r in results]
    assert all(r["writes_per_s"] > 0 and r["stats_p95_ms"] >= 0 for r in results)
    assert results[1]["storage_bytes"] > 0
    assert "writes/s" in format_table(results)
    write_svg(results, tmp_path / "chart.svg")
    assert (tmp_path / "chart.svg").read_text().startswith("<svg")


def test_a_missing_duckdb_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sauci.exceptions import MissingDependencyError

    monkeypatch.setitem(__import__("sys").modules, "duckdb", None)
    with pytest.raises(MissingDependencyError, match=r"sauci\[duckdb\]"):
        open_store("duckdb://:memory:")


def test_opening_other_stores_imports_neither_redis_nor_duckdb() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from sauci.storage import open_store; open_store('memory://');"
        "open_store('tee:memory://;memory://');"
        "print(sorted({'redis', 'duckdb'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]" == out.stdout.strip()


def test_a_file_from_before_distributed_runs_gets_the_new_columns(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(path))
    # The builds table as SauCI wrote it before runs_on, attempt and heartbeat_at.
    conn.execute(
        "CREATE TABLE builds (id BIGINT PRIMARY KEY, repo VARCHAR NOT NULL,"
        " ref VARCHAR NOT NULL DEFAULT '', sha VARCHAR NOT NULL DEFAULT '',"
        " event VARCHAR NOT NULL DEFAULT 'manual', status VARCHAR NOT NULL, reason VARCHAR,"
        " priority INTEGER NOT NULL DEFAULT 0, params VARCHAR NOT NULL DEFAULT '{}',"
        " author VARCHAR NOT NULL DEFAULT '', message VARCHAR NOT NULL DEFAULT '',"
        " pusher VARCHAR NOT NULL DEFAULT '', old_sha VARCHAR NOT NULL DEFAULT '',"
        " queued_at DOUBLE NOT NULL, started_at DOUBLE, finished_at DOUBLE,"
        " claimed_by VARCHAR, reuse_from BIGINT, cancel_requested VARCHAR)"
    )
    conn.execute("INSERT INTO builds (id, repo, status, queued_at) VALUES (1, 'r', 'queued', 5.0)")
    conn.close()
    store = DuckDBStore(path)
    old = store.get_build(1)
    assert ("r", (), 1, None) == (old.repo, old.runs_on, old.attempt, old.heartbeat_at)
    claimed = store.claim_build("w", build_id=1)
    assert claimed is not None
    assert claimed.heartbeat_at == claimed.started_at
    assert [] == store.list_workers()
    store.close()


def test_a_new_file_has_exactly_the_tables_and_columns_of_the_one_schema(tmp_path: Path) -> None:
    """DuckDB's DDL is compiled from sauci.storage.schema: every table and column
    there, and nothing else."""
    import duckdb

    from sauci.storage import schema

    path = tmp_path / "new.duckdb"
    DuckDBStore(path).close()
    conn = duckdb.connect(str(path))
    try:
        actual = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        ).fetchall()
    finally:
        conn.close()
    expected = {(t.name, c.name) for t in schema.metadata.sorted_tables for c in t.columns}
    assert expected == set(actual)


def test_a_file_held_by_a_server_gives_every_cli_command_a_way_out(tmp_path: Path) -> None:
    """DuckDB lets one process use a file: while `sauci serve` has it, a CLI read
    says who holds it and what to do instead, with exit code 3 and no traceback."""
    import os
    import subprocess
    import sys

    path = tmp_path / "sauci.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from sauci.storage import open_store;"
            f" s = open_store('duckdb:///{path}'); print('open', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert "open" == holder.stdout.readline().strip()
        env = {**os.environ, "SAUCI_STORE": f"duckdb:///{path}", "SAUCI_DATA_DIR": str(tmp_path)}
        for command in (["builds"], ["show", "1"], ["logs", "1"], ["status"], ["trigger", "."]):
            done = subprocess.run(
                [sys.executable, "-m", "sauci", *command], env=env, capture_output=True, text=True
            )
            assert 3 == done.returncode, (command, done.stderr)
            assert "Traceback" not in done.stderr
            assert f"pid {holder.pid}" in done.stderr
            assert "web UI" in done.stderr and "SQLite or PostgreSQL" in done.stderr
    finally:
        holder.communicate("")
