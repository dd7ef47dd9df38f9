"""open_store(url) and default_store_url(): which store a URL names."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import sauci.storage
import sauci.testing
from sauci.exceptions import ConfigError, PluginError
from sauci.plugins import STORES
from sauci.storage import default_store_url, open_store
from sauci.storage.memory import MemoryStore
from sauci.storage.sqlalchemy import SQLAlchemyStore
from sauci.storage.sqlite import SQLiteStore
from sauci.typing import STORE_PARTS


def test_public_api_is_exactly_all() -> None:
    expected = ["MemoryStore", "SQLiteStore", "default_store_url", "open_store"]
    assert expected == sauci.storage.__all__
    parts = [f"{part.__name__}Conformance" for part in STORE_PARTS]
    assert sorted([*parts, "StoreConformance", "make_store_state_machine"]) == sorted(
        sauci.testing.__all__
    )
    for name in sauci.storage.__all__:
        assert getattr(sauci.storage, name) is not None
    assert sauci.storage.SQLiteStore is SQLiteStore


def test_memory_url() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_url_with_an_absolute_path(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'abs.db'}")  # sqlite:////tmp/...
    assert isinstance(store, SQLiteStore)
    assert str(tmp_path / "abs.db") == store.path
    store.close()


def test_sqlite_url_with_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///rel.db")
    assert isinstance(store, SQLiteStore)
    assert "rel.db" == store.path
    store.close()
    assert (tmp_path / "rel.db").is_file()


@pytest.mark.parametrize("name", ["x.db", "x.sqlite", "x.sqlite3", "X.DB"])
def test_bare_sqlite_file_names(name: str, tmp_path: Path) -> None:
    store = open_store(str(tmp_path / name))
    assert isinstance(store, SQLiteStore)
    store.close()


def test_sqlalchemy_prefix_forces_sqlalchemy_even_for_sqlite(tmp_path: Path) -> None:
    store = open_store(f"sqlalchemy+sqlite:///{tmp_path / 'sa.db'}")
    assert isinstance(store, SQLAlchemyStore)
    assert "sqlite" == store.engine.dialect.name
    store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg", "postgres"])
def test_postgresql_urls(scheme: str, postgres_url: str) -> None:
    store = open_store(postgres_url.replace("postgresql+psycopg", scheme))
    assert isinstance(store, SQLAlchemyStore)
    assert "postgresql" == store.engine.dialect.name
    store.close()


@pytest.mark.parametrize(
    ("url", "suggestion"),
    [
        ("memroy://", "memory://"),
        ("sqlit:///x.db", "sqlite://"),
        ("postgressql://u@h/db", "postgresql://"),
        ("sqlalchemi://x", "sqlalchemy+<url>"),
    ],
)
def test_unknown_scheme_suggests_a_known_one(url: str, suggestion: str) -> None:
    with pytest.raises(ConfigError, match="did you mean") as info:
        open_store(url)
    assert suggestion in str(info.value)


def test_unknown_scheme_without_a_close_match() -> None:
    with pytest.raises(ConfigError, match="unknown store scheme 'zzzzzz'") as info:
        open_store("zzzzzz://x")
    assert "did you mean" not in str(info.value)
    assert "memory://" in str(info.value)  # the known schemes are listed


def test_a_bare_path_that_is_not_a_database_file() -> None:
    with pytest.raises(ConfigError, match=r"\.db"):
        open_store("builds.txt")


def test_malformed_sqlite_url() -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_store("sqlite:/x.db")


def _fake_entry_points(value: str):  # type: ignore[no-untyped-def]
    ep = importlib.metadata.EntryPoint(name="fake", value=value, group="sauci.stores")

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        return [ep] if group == "sauci.stores" else []

    return entry_points


def test_plugin_stores_come_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        importlib.metadata, "entry_points", _fake_entry_points("sauci.storage.memory:MemoryStore")
    )
    assert isinstance(open_store("fake://anything"), MemoryStore)
    with pytest.raises(ConfigError, match="did you mean fake://"):
        open_store("fak://anything")


def test_a_broken_plugin_is_a_plugin_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        importlib.metadata, "entry_points", _fake_entry_points("no_such_module_xyz:Store")
    )
    with pytest.raises(PluginError, match="no_such_module_xyz"):
        open_store("fake://anything")


def test_every_built_in_store_of_the_adapter_table_is_a_store_class() -> None:
    classes = {name: STORES.load(name) for name in STORES.builtins}
    assert MemoryStore is classes["memory"]
    assert SQLiteStore is classes["sqlite"]
    assert SQLAlchemyStore is classes["postgresql"] is classes["sqlalchemy"]
    assert all(hasattr(cls, "from_url") and hasattr(cls, "close") for cls in classes.values())


class _Recorder:
    """Stands for a built-in store: records the URLs it is opened with."""

    opened: list[str] = []

    @classmethod
    def from_url(cls, url: str) -> None:
        cls.opened.append(url)


@pytest.mark.parametrize(
    ("url", "builtin"), [("postgres://u@h/db", "postgresql"), ("rediss://h:1/0", "redis")]
)
def test_other_spellings_of_a_scheme_reach_the_same_store(
    url: str, builtin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STORES.builtins, builtin, f"{__name__}:_Recorder")
    monkeypatch.setattr(_Recorder, "opened", [])
    open_store(url)
    assert [url] == _Recorder.opened


def test_default_store_url_prefers_sauci_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert f"sqlite:///{tmp_path / 'data' / 'sauci.db'}" == default_store_url()
    assert (tmp_path / "data").is_dir()


def test_default_store_url_uses_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAUCI_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert f"sqlite:///{tmp_path / 'xdg' / 'sauci' / 'sauci.db'}" == default_store_url()
    assert (tmp_path / "xdg" / "sauci").is_dir()


def test_default_store_url_falls_back_to_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAUCI_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".local" / "share" / "sauci" / "sauci.db"
    assert f"sqlite:///{expected}" == default_store_url()
    store = open_store(default_store_url())
    assert str(expected) == store.path  # type: ignore[attr-defined]
    store.close()
