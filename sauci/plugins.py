"""Resolve adapters by short alias or dotted path, lazily.

Built-in adapters register through the same entry-point groups as plugins
(``sauci.sandboxes``, ``sauci.stores``, ``sauci.runners``), so a third-party
Sandbox is chosen exactly like ``local``. A built-in table is consulted first
so that the common case does not scan installed distributions' metadata.
"""

from __future__ import annotations

import importlib
from typing import Any

from sauci.exceptions import PluginError

__all__ = ["load_class", "load_sandbox"]

_BUILTIN: dict[str, dict[str, str]] = {
    "sauci.sandboxes": {
        "local": "sauci.sandbox.local:LocalSandbox",
        "namespace": "sauci.sandbox.namespace:NamespaceSandbox",
        "docker": "sauci.sandbox.docker:DockerSandbox",
    },
    "sauci.stores": {
        "memory": "sauci.storage.memory:MemoryStore",
        "sqlite": "sauci.storage.sqlite:SQLiteStore",
        "sqlalchemy": "sauci.storage.sqlalchemy:SQLAlchemyStore",
        "postgresql": "sauci.storage.sqlalchemy:SQLAlchemyStore",
    },
    "sauci.runners": {"local": "sauci.core.runner:LocalRunner"},
}


def _import(target: str, *, group: str, alias: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"{group} plugin {alias!r} ({target}) cannot be loaded: {exc}") from exc


def load_class(group: str, alias: str) -> Any:
    """The class registered as ``alias`` in ``group``, or at dotted path ``pkg.mod:Class``."""
    if ":" in alias:
        return _import(alias, group=group, alias=alias)
    builtin = _BUILTIN.get(group, {})
    if alias in builtin:
        return _import(builtin[alias], group=group, alias=alias)
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=group)}
    if alias in found:
        try:
            return found[alias].load()
        except Exception as exc:  # a plugin's import error must not become a traceback
            raise PluginError(f"{group} plugin {alias!r} cannot be loaded: {exc}") from exc
    import difflib

    known = sorted(set(builtin) | set(found))
    hint = difflib.get_close_matches(alias, known, n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    noun = {"sauci.sandboxes": "sandbox", "sauci.stores": "store", "sauci.runners": "runner"}.get(
        group, group
    )
    raise PluginError(f"unknown {noun} {alias!r}{extra} (known: {', '.join(known)})")


def load_sandbox(alias: str, **kwargs: Any) -> Any:
    """An instance of the sandbox registered as ``alias``."""
    return load_class("sauci.sandboxes", alias)(**kwargs)
