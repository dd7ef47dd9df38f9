"""The one adapter table: stores by URL scheme, sandboxes and runners by alias.

Each built-in adapter is named once, here, as ``"module:Class"`` text, so
nothing is imported until it is chosen (``sauci run`` on the default SQLite
store never imports SQLAlchemy). A name the table does not hold is looked up
in the entry-point group of its kind (``sauci.stores``, ``sauci.sandboxes``,
``sauci.runners``): third-party adapters are chosen exactly like built-ins. A
typo gets a "did you mean" (as kombu's transport aliases do). A dotted path
``pkg.mod:Class`` is accepted by ``load_class``, for the operator's own
configuration only, never from a pipeline file.
"""

from __future__ import annotations

import importlib
from typing import Any

import attrs

from sauci.exceptions import PluginError

__all__ = ["RUNNERS", "SANDBOXES", "STORES", "Kind", "load_class", "load_runner", "load_sandbox"]


@attrs.frozen
class Kind:
    """One kind of adapter: its entry-point group, its name in messages, and
    the built-ins (alias -> ``"module:Class"``)."""

    group: str
    noun: str
    builtins: dict[str, str]

    def known(self) -> dict[str, Any]:
        """Every alias: the built-ins, then the entry points not shadowing one."""
        # Imported here: importlib.metadata costs ~9 ms, and a built-in never needs it.
        from importlib import metadata

        found: dict[str, Any] = {ep.name: ep for ep in metadata.entry_points(group=self.group)}
        return {**found, **self.builtins}

    @staticmethod
    def closest(name: str, known: dict[str, Any]) -> str | None:
        """The known alias closest to a mistyped ``name``, if any is close."""
        import difflib  # only on the error path

        close = difflib.get_close_matches(name, sorted(known), n=1)
        return close[0] if close else None

    def load(self, name: str) -> Any:
        """The class (or factory) registered as ``name``; PluginError when
        there is none or it does not import."""
        # The built-ins first: the common case reads no distribution's metadata.
        target = self.builtins.get(name)
        known = {} if target is not None else self.known()
        target = target or known.get(name)
        if target is None:
            close = self.closest(name, known)
            hint = f"; did you mean {close!r}?" if close else ""
            raise PluginError(
                f"unknown {self.noun} {name!r}{hint} (known: {', '.join(sorted(known))})"
            )
        if isinstance(target, str):
            return _import(target, what=f"{self.group} plugin {name!r}")
        try:
            return target.load()
        except Exception as exc:  # a plugin's import error must not become a traceback
            raise PluginError(
                f"{self.group} plugin {name!r} ({target.value}) cannot be loaded: {exc}"
            ) from exc


STORES = Kind(
    "sauci.stores",
    "store",
    {
        "memory": "sauci.storage.memory:MemoryStore",
        "sqlite": "sauci.storage.sqlite:SQLiteStore",
        "postgresql": "sauci.storage.sqlalchemy:SQLAlchemyStore",
        "sqlalchemy": "sauci.storage.sqlalchemy:SQLAlchemyStore",
        "duckdb": "sauci.storage.duckdb:DuckDBStore",
        "redis": "sauci.storage.redis:RedisStore",
        "stream": "sauci.storage.stream:StreamStore",
        "tee": "sauci.storage.tee:TeeStore",
    },
)
# Other spellings of a store scheme, and how each is written in messages.
STORE_ALIASES = {"postgres": "postgresql", "rediss": "redis"}
STORE_FORMS = {"sqlalchemy": "sqlalchemy+<url>", "stream": "stream+redis://", "tee": "tee:"}

SANDBOXES = Kind(
    "sauci.sandboxes",
    "sandbox",
    {
        "local": "sauci.sandbox.local:LocalSandbox",
        "namespace": "sauci.sandbox.namespace:NamespaceSandbox",
        "docker": "sauci.sandbox.docker:DockerSandbox",
        "vm": "sauci.sandbox.vm:VmSandbox",
    },
)
# What a server hands its builds to (sauci.typing.Runner).
RUNNERS = Kind(
    "sauci.runners",
    "runner",
    {
        "threaded": "sauci.core.threaded:ThreadedRunner",
        "celery": "sauci.distributed:CeleryRunner",
    },
)
_KINDS = {kind.group: kind for kind in (STORES, SANDBOXES, RUNNERS)}


def _import(target: str, *, what: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"{what} ({target}) cannot be loaded: {exc}") from exc


def load_class(group: str, alias: str) -> Any:
    """The class registered as ``alias`` in ``group``, or at dotted path ``pkg.mod:Class``."""
    if ":" in alias:
        return _import(alias, what=f"{group} plugin {alias!r}")
    kind = _KINDS.get(group) or Kind(group, group, {})
    return kind.load(alias)


def load_sandbox(alias: str, **kwargs: Any) -> Any:
    """An instance of the sandbox registered as ``alias``."""
    return SANDBOXES.load(alias)(**kwargs)


def load_runner(alias: str, **kwargs: Any) -> Any:
    """An instance of the server runner registered as ``alias`` (``threaded``,
    ``celery``, or a plugin's)."""
    return RUNNERS.load(alias)(**kwargs)
