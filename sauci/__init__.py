"""SauCI: continuous integration you can embed.

The public API is what ``__all__`` names. Back ends with heavy dependencies
are imported from their own modules (``sauci.storage.sqlalchemy.SQLAlchemyStore``,
``sauci.sandbox.docker``), so that ``import sauci`` does not pay for them.
"""

from sauci.app import LocalRunner, run_pipeline
from sauci.core.config import Settings, load_settings
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
from sauci.storage.sqlite import SQLiteStore


def __getattr__(name: str) -> str:
    """``__version__``, read from the package metadata when asked for (as attrs and
    structlog do: reading metadata costs an import most commands never need)."""
    if name != "__version__":
        raise AttributeError(f"module 'sauci' has no attribute {name!r}")
    from importlib import metadata

    try:
        return metadata.version("sauci")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


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
    "SQLiteStore",
    "SandboxError",
    "SauCIError",
    "Schedule",
    "Scheduler",
    "Server",
    "Settings",
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
    "load_settings",
    "open_store",
    "parse_pipeline",
    "run_pipeline",
]
