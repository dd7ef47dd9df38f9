"""The house rules of issue "One house", checked on the code as it is: imports go
one way (import-linter contracts in pyproject.toml), no import circle between
modules (function-local imports included), small modules, no start-up tricks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parent.parent / "sauci"
ROOT = PACKAGE.parent


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def test_no_import_circle_between_modules():
    graph = grimp.build_graph("sauci", include_external_packages=False)
    assert [] == _cycles(graph)


def test_the_layer_contracts_hold():
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert 0 == result.returncode, result.stdout + result.stderr


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert {} == long


def test_no_start_up_tricks():
    tricks = re.compile(
        r"gc\.(freeze|disable)\(|TYPE_CHECKING = False|^\s*(from|import) _(?!_)[a-z]",
        re.MULTILINE,
    )
    found = [
        f"{p.relative_to(ROOT)}: {m.group(0).strip()}"
        for p in _sources()
        for m in tricks.finditer(p.read_text(encoding="utf-8"))
    ]
    assert [] == found


def _owner(module: str) -> str | None:
    """The package a private module belongs to ("sauci.sandbox" for
    "sauci.sandbox._proctree"), None for a public module."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_no_module_imports_another_packages_private_module():
    graph = grimp.build_graph("sauci", include_external_packages=False)
    found = sorted(
        f"{importer} imports {imported}"
        for imported in graph.modules
        if (owner := _owner(imported)) is not None
        for importer in graph.find_modules_that_directly_import(imported)
        if importer != owner and not importer.startswith(owner + ".")
    )
    assert [] == found


def test_no_global_statement_outside_the_composition_root():
    import ast

    found = [
        f"{p.relative_to(ROOT)}:{node.lineno}: global {', '.join(node.names)}"
        for p in _sources()
        if not p.is_relative_to(PACKAGE / "app")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Global)
    ]
    assert [] == found


def test_storage_decodes_rows_by_column_name_never_by_position():
    positional = re.compile(r"\brow\[\s*-?\d+\s*\]")
    found = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in sorted((PACKAGE / "storage").rglob("*.py"))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if positional.search(line)
    ]
    assert [] == found


def test_a_table_is_created_only_by_the_migrations():
    """Tables come from schema.py through alembic; DuckDB's DDL is generated from
    the same tables, so no module names a table in a CREATE TABLE of its own."""
    migrations = PACKAGE / "storage" / "migrations"
    create = re.compile(
        r"CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(?!IF\b)[\"'`]?[A-Za-z_]", re.IGNORECASE
    )
    found = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in _sources()
        if not p.is_relative_to(migrations)
        for m in create.finditer(p.read_text(encoding="utf-8"))
    ]
    assert [] == found


def test_the_tee_store_forwards_generically():
    """TeeStore forwards the Store's methods without writing each one out."""
    lines = len((PACKAGE / "storage" / "tee.py").read_text(encoding="utf-8").splitlines())
    assert lines <= 120
