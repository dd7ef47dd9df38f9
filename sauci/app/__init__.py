"""The composition root: SauCI's servers, runners and workers, made from Settings.

This is the one place that names adapters and wires them together. The core
(``sauci.core``) receives each part as an instance; the command line and the
Django app call these functions. Each process's wiring has its own module, so
that a process imports only its own stack: this package is what ``sauci run``
and the library need (:class:`LocalRunner`, :func:`run_pipeline`);
``sauci.app.server`` makes the server of ``sauci serve`` (its triggers,
runners, claim gate and placement) and ``sauci.app.worker`` the runtime of
``sauci worker``. Optional back ends (Celery, docker) are imported only when
the settings ask for them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sauci.core import runner as _core_runner
from sauci.core.config import Settings
from sauci.core.executor import BuildObserver
from sauci.core.models import BuildOutcome, BuildRequest, Pipeline
from sauci.core.secrets import Secrets
from sauci.typing import Sandbox, Source, Store

__all__ = [
    "LocalRunner",
    "build_runner",
    "git_sources",
    "mirror_sources",
    "run_pipeline",
]


def _source_for(repo: str, *, mirrors: Path) -> Source:
    """A GitSource for a local path, a mirror-backed source for a URL."""
    from sauci.source.git import GitSource, is_remote

    if is_remote(repo):
        # GitPython (mirrors) is imported only for a repository known by URL.
        from sauci.source.mirrors import MirrorSource

        return MirrorSource(repo, mirrors)
    return GitSource(repo)


def git_sources(settings: Settings) -> Callable[[str], Source]:
    """The Source of a repository: a local path is read in place (worktree slots),
    a URL through a mirror cached under ``settings.data_dir / "mirrors"``."""
    return functools.partial(_source_for, mirrors=settings.data_dir / "mirrors")


def mirror_sources(settings: Settings) -> Callable[[str], Source]:
    """Every repository, local path or URL, through a mirror of this process's
    own under ``settings.data_dir / "mirrors"``: a worker only reads the
    repository (clone, then fetch) and never writes to it, not even a
    worktree entry, so it needs no write access to where it lives."""
    from sauci.source.mirrors import MirrorSource

    return lambda repo: MirrorSource(repo, settings.data_dir / "mirrors")


def _installed_sandbox(name: str) -> Sandbox:
    """Any installed sandbox, by its alias: trusted use (``sauci run``, the library)."""
    from sauci.plugins import load_sandbox

    sandbox: Sandbox = load_sandbox(name)
    return sandbox


def _local_sandbox(settings: Settings) -> Sandbox:
    from sauci.app.reconcile import run_cgroup_prefix
    from sauci.sandbox.local import LocalSandbox

    # Named by this pid: the next `sauci run` ends what a killed one left.
    return LocalSandbox(grace=settings.grace, cgroup_prefix=run_cgroup_prefix(os.getpid()))


class LocalRunner(_core_runner.LocalRunner):
    """:class:`sauci.core.runner.LocalRunner` with the defaults of trusted use.

    Each part not handed in is today's default: a LocalSandbox, git sources
    (:func:`git_sources`), and any installed sandbox for a step that names one.
    """

    def __init__(
        self,
        *,
        store: Store,
        sandbox: Sandbox | None = None,
        sources: Callable[[str], Source] | None = None,
        load_sandbox: Callable[[str], Sandbox] | None = None,
        settings: Settings | None = None,
        **options: Any,
    ) -> None:
        settings = settings or Settings()
        super().__init__(
            store=store,
            sandbox=_local_sandbox(settings) if sandbox is None else sandbox,
            sources=git_sources(settings) if sources is None else sources,
            load_sandbox=_installed_sandbox if load_sandbox is None else load_sandbox,
            settings=settings,
            **options,
        )


def build_runner(
    settings: Settings,
    store: Store,
    *,
    observer: BuildObserver | None = None,
    sandbox: Sandbox | None = None,
    secrets: Mapping[str, str] | Secrets | None = None,
) -> LocalRunner:
    """The runner behind ``sauci run``: trusted use on the user's own checkout.

    A LocalSandbox (unless ``sandbox`` is given), any installed sandbox for a
    step that names one, git sources, and this process's environment as the
    secrets (unless ``secrets`` is given).
    """
    return LocalRunner(
        store=store, sandbox=sandbox, settings=settings, secrets=secrets, observer=observer
    )


def run_pipeline(
    pipeline: Pipeline,
    workspace: Path | str = ".",
    *,
    store: Store | None = None,
    sandbox: Sandbox | None = None,
    settings: Settings | None = None,
    repo: str | None = None,
    ref: str = "",
    sha: str = "",
    event: str = "cli",
    secrets: Mapping[str, str] | None = None,
    observer: BuildObserver | None = None,
) -> BuildOutcome:
    """Run ``pipeline`` in ``workspace`` now and return the outcome.

    With no ``store``, results are kept in memory only. Logs go to the
    settings' data directory (``SAUCI_DATA_DIR`` or ``~/.local/share/sauci``).

    >>> from sauci import Pipeline, Step, run_pipeline
    >>> outcome = run_pipeline(Pipeline(steps=[Step(name="hello", run="echo hi")]))
    >>> outcome.ok
    True
    """
    if store is None:
        from sauci.storage.memory import MemoryStore

        store = MemoryStore()
    workspace = Path(workspace).resolve()
    runner = build_runner(
        settings or Settings(), store, observer=observer, sandbox=sandbox, secrets=secrets
    )
    request = BuildRequest(repo=repo or workspace.name, ref=ref, sha=sha, event=event)
    return runner.run_pipeline(pipeline, workspace, request)
