"""Each process imports its own stack (issue "One house", item 8): importing the
library and the command line, which `sauci run` does, loads none of the wiring
of `sauci serve` or `sauci worker`, nor what only they use."""

from __future__ import annotations

import ast
import subprocess
import sys

SERVER_ONLY = (
    "sauci.app.server",  # build_server
    "sauci.app.worker",  # build_worker
    "sauci.core.capacity",  # builds placed by declared cost
    "sauci.core.placement",
    "sauci.core.claim_gate",  # GitHub's concurrency
    "sauci.workflows",  # the workflow front ends, read only for a workflow file
    "sauci.distributed",
    "socket",
    "tomllib",  # read only when there is a sauci.toml
)


def _loaded(code: str, names: tuple[str, ...]) -> list[str]:
    probe = f"{code}; import sys; print(sorted(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return list(ast.literal_eval(out.splitlines()[-1]))


def test_the_library_and_the_cli_import_no_server_wiring():
    assert [] == _loaded("import sauci, sauci.cli", SERVER_ONLY)


def test_the_server_wiring_is_where_the_server_imports_it():
    """The guard above can fail: the same probe sees the server's modules once
    the server's wiring is imported."""
    assert ["sauci.app.server", "sauci.core.capacity", "sauci.core.claim_gate"] == _loaded(
        "import sauci.app.server",
        ("sauci.app.server", "sauci.core.capacity", "sauci.core.claim_gate"),
    )


def test_a_repository_without_a_workflow_file_loads_no_workflow_front_end():
    """The server's cron trigger asks every repository without a .sauci.yml for
    its workflow's schedules: with no workflow file, the GitHub front end (and
    its YAML) stays unimported."""
    code = "from sauci.workflows import workflow_schedules; workflow_schedules(lambda p: None)"
    assert [] == _loaded(code, ("sauci.workflows.github", "yaml"))


def test_sauci_run_of_a_sauci_yml_imports_no_workflow_front_end(tmp_path):
    """`.sauci.yml` is native wherever it is: `sauci run` reads it without the
    workflow package (GitHub and GitLab files need it; the guard can fail, see
    the run of a GitLab file below)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / ".sauci.yml").write_text("steps:\n  t:\n    run: 'true'\n")
    data = tmp_path / "data"

    def run_loads(*extra: str) -> list[str]:
        code = (
            "import os, sys, sauci.cli; sys.stdout = open(os.devnull, 'w'); "
            f"code = sauci.cli.main(['run', '--quiet', '--data-dir', {str(data)!r}, "
            f"{str(repo)!r}, *{extra!r}]); sys.stdout = sys.__stdout__; assert code == 0, code"
        )
        return _loaded(code, ("sauci.workflows",))

    assert [] == run_loads()
    (repo / "other.gitlab-ci.yml").write_text("t:\n  script: ['true']\n")
    assert ["sauci.workflows"] == run_loads("--file", "other.gitlab-ci.yml")


def test_a_run_without_a_step_cache_loads_no_step_cache_machinery(tmp_path):
    """The step cache's keys, archives and saves are imported by a step that
    declares `cache:`; a build without one (and the library's import) loads
    none of them. The guard can fail: the cached step's run below loads them."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    data = tmp_path / "data"
    machinery = ("sauci.core._step_cache", "sauci.core.cache_saver")

    def run_loads(pipeline: str) -> list[str]:
        (repo / ".sauci.yml").write_text(pipeline)
        code = (
            "import os, sys, sauci.cli; sys.stdout = open(os.devnull, 'w'); "
            f"code = sauci.cli.main(['run', '--quiet', '--data-dir', {str(data)!r}, "
            f"{str(repo)!r}]); sys.stdout = sys.__stdout__; assert code == 0, code"
        )
        return _loaded(code, machinery)

    assert [] == run_loads("steps:\n  t:\n    run: 'true'\n")
    cached = "steps:\n  t:\n    run: 'mkdir -p out'\n    cache:\n      key: k\n      paths: [out]\n"
    assert list(machinery) == run_loads(cached)


def test_the_pipeline_reader_loads_a_feature_s_checks_for_a_pipeline_using_it():
    """Reading a pipeline without expressions, a matrix or a step cache loads
    none of their readers (the expression parser, the matrix expansion, the
    cache key checks); each is loaded by a pipeline that uses it, so the guard
    can fail."""
    readers = (
        "sauci.core.cache_key",
        "sauci.core.expressions",
        "sauci.core.pipeline._cache_keys",
        "sauci.core.pipeline._matrix",
    )

    def parse_loads(text: str) -> list[str]:
        return _loaded(f"import sauci; sauci.parse_pipeline({text!r}, 'p.yml')", readers)

    assert [] == parse_loads("env: {A: b}\nsteps:\n  t:\n    run: 'echo $A'\n")
    expression = "env: {A: b}\nsteps:\n  t:\n    run: 'echo ${{ env.A }}'\n"
    assert ["sauci.core.expressions"] == parse_loads(expression)
    matrix = "steps:\n  t:\n    run: 'true'\n    matrix: {py: ['3.11']}\n"
    assert ["sauci.core.pipeline._matrix"] == parse_loads(matrix)
    cached = "steps:\n  t:\n    run: 'true'\n    cache:\n      key: k\n      paths: [out]\n"
    assert ["sauci.core.cache_key", "sauci.core.pipeline._cache_keys"] == parse_loads(cached)


def _compiling(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` called ``re`` (any of its public functions, so
    compiled a pattern or used one cached) while ``code`` ran."""
    probe = (
        "import re, sys\n"
        "seen = set()\n"
        "def watch(name):\n"
        "    real = getattr(re, name)\n"
        "    def call(*args, **kwargs):\n"
        "        seen.add(sys._getframe(1).f_globals.get('__name__'))\n"
        "        return real(*args, **kwargs)\n"
        "    setattr(re, name, call)\n"
        "for name in ('compile', 'match', 'fullmatch', 'search', 'sub', 'findall', 'finditer'):\n"
        "    watch(name)\n"
        f"{code}\n"
        f"print(sorted(m for m in {modules!r} if m in seen))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return list(ast.literal_eval(out.splitlines()[-1]))


def test_a_one_step_run_compiles_no_pattern_it_does_not_use(tmp_path):
    """Durations and sizes, workflow `if:` conditions, service names, terminal
    escapes, worker labels, names of variables and sandboxes and lost
    workspaces each have a pattern (a step name's control characters a set) that `re` compiles at its first
    use, not when the module is imported: a one-step run (in a new data dir)
    uses none of them. The guard can fail: reading a pipeline with a timeout
    and a service uses two."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    data = tmp_path / "data"
    lazy = (
        "sauci.app.reconcile",
        "sauci.cli._ansi",
        "sauci.core._converters",
        "sauci.core.conditions",
        "sauci.core.labels",
        "sauci.core.pipeline._nodes",
        "sauci.core.pipeline._spec",
        "sauci.core.pipeline._step_keys",
        "sauci.core.pipeline._units",
    )
    (repo / ".sauci.yml").write_text("steps:\n  t:\n    run: 'true'\n")
    run = (
        "import os, sauci.cli; sys.stdout = open(os.devnull, 'w'); "
        f"code = sauci.cli.main(['run', '--quiet', '--data-dir', {str(data)!r}, "
        f"{str(repo)!r}]); sys.stdout = sys.__stdout__; assert code == 0, code"
    )
    assert [] == _compiling(run, lazy)
    using = "steps:\n  t:\n    run: 'true'\n    timeout: 10m\n    services: [postgres]\n"
    parse = f"import sauci; sauci.parse_pipeline({using!r}, 'p.yml')"
    assert [
        "sauci.core._converters",
        "sauci.core.pipeline._units",
    ] == _compiling(parse, lazy)
