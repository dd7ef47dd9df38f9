"""SauCI: continuous integration you can embed.

Public names are loaded lazily (PEP 562) so that ``import sauci`` and the
``sauci`` command start fast; see ``__all__`` for the public API.
"""

from __future__ import annotations

import importlib

# Not from typing: importing typing costs several ms of every `sauci` start,
# and the command line has work to start before it needs it. (mypy reads
# any TYPE_CHECKING name as true.)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Artifact",
    "Build",
    "BuildOutcome",
    "BuildRequest",
    "ConfigError",
    "EndedBy",
    "Event",
    "Limits",
    "LocalRunner",
    "LocalSandbox",
    "MemoryStore",
    "NotFoundError",
    "Pipeline",
    "PipelineError",
    "Repo",
    "SQLAlchemyStore",
    "SQLiteStore",
    "SandboxError",
    "SauCIError",
    "Schedule",
    "Scheduler",
    "Server",
    "Status",
    "Step",
    "StepResult",
    "StepRun",
    "StoreError",
    "TestCase",
    "When",
    "__version__",
    "dump_pipeline",
    "load_pipeline",
    "open_store",
    "parse_pipeline",
    "run_pipeline",
]

_LAZY = {
    "Artifact": "sauci.core.models",
    "Build": "sauci.core.models",
    "BuildOutcome": "sauci.core.models",
    "Repo": "sauci.core.models",
    "Schedule": "sauci.core.models",
    "Scheduler": "sauci.core.scheduler",
    "Server": "sauci.core.server",
    "BuildRequest": "sauci.core.models",
    "EndedBy": "sauci.core.models",
    "Event": "sauci.core.models",
    "Limits": "sauci.core.models",
    "Pipeline": "sauci.core.models",
    "Status": "sauci.core.models",
    "Step": "sauci.core.models",
    "StepResult": "sauci.core.models",
    "StepRun": "sauci.core.models",
    "TestCase": "sauci.core.models",
    "When": "sauci.core.models",
    "ConfigError": "sauci.exceptions",
    "NotFoundError": "sauci.exceptions",
    "PipelineError": "sauci.exceptions",
    "SandboxError": "sauci.exceptions",
    "SauCIError": "sauci.exceptions",
    "StoreError": "sauci.exceptions",
    "LocalRunner": "sauci.core.runner",
    "run_pipeline": "sauci.core.runner",
    "LocalSandbox": "sauci.sandbox.local",
    "MemoryStore": "sauci.storage.memory",
    "SQLAlchemyStore": "sauci.storage.sqlalchemy",
    "SQLiteStore": "sauci.storage.sqlite",
    "open_store": "sauci.storage",
    "dump_pipeline": "sauci.core.pipeline",
    "load_pipeline": "sauci.core.pipeline",
    "parse_pipeline": "sauci.core.pipeline",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("sauci")
        except PackageNotFoundError:  # running from a source tree
            return "0+unknown"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sauci' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from sauci.core.models import (
        Artifact,
        Build,
        BuildOutcome,
        BuildRequest,
        EndedBy,
        Event,
        Limits,
        Pipeline,
        Repo,
        Schedule,
        Status,
        Step,
        StepResult,
        StepRun,
        TestCase,
        When,
    )
    from sauci.core.pipeline import dump_pipeline, load_pipeline, parse_pipeline
    from sauci.core.runner import LocalRunner, run_pipeline
    from sauci.core.scheduler import Scheduler
    from sauci.core.server import Server
    from sauci.exceptions import (
        ConfigError,
        NotFoundError,
        PipelineError,
        SandboxError,
        SauCIError,
        StoreError,
    )
    from sauci.sandbox.local import LocalSandbox
    from sauci.storage import open_store
    from sauci.storage.memory import MemoryStore
    from sauci.storage.sqlalchemy import SQLAlchemyStore
    from sauci.storage.sqlite import SQLiteStore
