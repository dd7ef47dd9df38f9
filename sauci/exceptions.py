"""SauCI's exceptions.

A failed step is a result, never an exception. These are for failures of SauCI
itself or of what it was given::

    SauCIError
    ├── ConfigError(ValueError)        a pipeline file or setting is wrong
    │   └── PipelineError              .sauci.yml problems, each with file:line:column
    ├── StoreError(RuntimeError)       a store back end failed or is unreachable
    │   └── NotFoundError(LookupError) no such build, step or log
    ├── SandboxError(RuntimeError)     a sandbox could not start or control a step
    ├── SourceError(RuntimeError)      a repository or commit cannot be checked out
    ├── PluginError(LookupError)       an unknown or broken plugin alias
    └── MissingDependencyError(ImportError)  an optional extra is not installed
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = [
    "ConfigError",
    "MissingDependencyError",
    "NotFoundError",
    "PipelineError",
    "PluginError",
    "Problem",
    "SandboxError",
    "SauCIError",
    "SourceError",
    "StoreError",
]


class SauCIError(Exception):
    """Base class of every error SauCI raises on purpose."""


class ConfigError(SauCIError, ValueError):
    """A setting or a pipeline is wrong; the message says what and where."""


@attrs.frozen(kw_only=True)
class Problem:
    """One problem in a pipeline file, located to the character."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        if self.line <= 0:  # built in code, not read from a file
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PipelineError(ConfigError):
    """One or more problems in a pipeline file (`problems` lists them all)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(SauCIError, RuntimeError):
    """A store back end failed; the original exception is the __cause__."""


class NotFoundError(StoreError, LookupError):
    """No such build, step, or log."""


class SandboxError(SauCIError, RuntimeError):
    """A sandbox could not start or control a step (not: the step failed)."""


class SourceError(SauCIError, RuntimeError):
    """A repository or commit cannot be read or checked out."""


class PluginError(SauCIError, LookupError):
    """An unknown plugin alias, or one that does not load."""


class MissingDependencyError(SauCIError, ImportError):
    """An optional back end's package is missing; the message names the extra."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is not installed; install it with: pip install 'sauci[{extra}]'"
        )
