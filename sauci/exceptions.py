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
    │   └── SourceUnavailableError(LookupError)  no such path, repository or commit
    ├── PluginError(LookupError)       an unknown or broken plugin alias
    └── MissingDependencyError(ImportError)  an optional extra is not installed

Every front end (``sauci``, ``manage.py sauci_*``) exits with
:func:`exit_code` of the error it stops on, from the one table
:data:`EXIT_CODES`: 2 for what the user gave or must change (a setting, a
pipeline, a plugin, an extra to install, an unknown build, a path that is not
a repository), 3 for SauCI itself not being able to work (a store or broker
down or locked, a sandbox that cannot start, git failing). 0 and 1 are a
build's answer (passed, failed), never an error's.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_PASSED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "ConfigError",
    "MissingDependencyError",
    "NotFoundError",
    "PipelineError",
    "PluginError",
    "Problem",
    "SandboxError",
    "SauCIError",
    "SourceError",
    "SourceUnavailableError",
    "StoreError",
    "exit_code",
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


class SourceUnavailableError(SourceError, LookupError):
    """The path given does not exist or is not a git repository, or the commit
    named is not in it: the user's to fix, not a failure of git."""


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


# Exit codes of the command-line front ends, by what the user can do about it.
EXIT_PASSED = 0  # the build passed (or the command did what it was asked)
EXIT_FAILED = 1  # the build failed: a required step said no
EXIT_USAGE = 2  # a user or configuration error: fix the command, setting or pipeline
EXIT_UNAVAILABLE = 3  # SauCI itself could not work: store, broker, sandbox or git down

# Most specific class first does not matter: exit_code walks the error's MRO.
EXIT_CODES: dict[type[BaseException], int] = {
    ConfigError: EXIT_USAGE,
    PipelineError: EXIT_USAGE,
    PluginError: EXIT_USAGE,
    MissingDependencyError: EXIT_USAGE,
    NotFoundError: EXIT_USAGE,
    SourceUnavailableError: EXIT_USAGE,
    StoreError: EXIT_UNAVAILABLE,
    SandboxError: EXIT_UNAVAILABLE,
    SourceError: EXIT_UNAVAILABLE,
    SauCIError: EXIT_UNAVAILABLE,
}


def exit_code(exc: BaseException) -> int:
    """The exit code for a command stopped by ``exc``: the entry in
    :data:`EXIT_CODES` of its nearest class (``NotFoundError`` is 2 though a
    ``StoreError`` is 3); 3 for an error that is not SauCI's."""
    for cls in type(exc).__mro__:
        code = EXIT_CODES.get(cls)
        if code is not None:
            return code
    return EXIT_UNAVAILABLE
