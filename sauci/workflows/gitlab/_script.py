"""A GitLab job's ``before_script``, ``script`` and ``after_script`` as one bash script.

A job runs in bash when there is one (the sandbox's, the image's), else in
sh, as GitLab's runner chooses. ``before_script`` and ``script`` run in one shell that stops at the first
failing command, each command echoed as ``$ command`` as GitLab's log shows
it. ``after_script`` runs after them, in its own shell, from the project
directory, after the script passed, failed, timed out or was cancelled,
with ``CI_JOB_STATUS`` set (``Step.after_run``, limited to its own time);
its failure is printed and does not change the job's status. Variables only
known when the step runs (``CI_PROJECT_DIR``, ...) are set first, from
SauCI's own; values built on them are assembled from quoted pieces, so
nothing in a variable is ever run.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

__all__ = ["SHELL", "after_script", "job_script"]

# GitLab's runner uses bash when the image has it, else sh: so does a job
# here (the script comes as $1). The script itself is POSIX sh.
SHELL = (
    "sh",
    "-c",
    'if command -v bash >/dev/null 2>&1; then exec bash -eo pipefail -c "$1"; fi; set -e; eval "$1"',
    "sauci-gitlab-job",
)
_STRICT = "set -e; (set -o pipefail) 2>/dev/null && set -o pipefail"

_PRELUDE = (
    # Stop at the first failing command even where sh runs the script as is.
    f'export CI_PROJECT_DIR="$PWD" CI_BUILDS_DIR="$(dirname "$PWD")"; {_STRICT}',
    'export CI_PIPELINE_ID="${SAUCI_BUILD_ID:-0}" CI_JOB_ID="${SAUCI_BUILD_ID:-0}"',
    'export CI_COMMIT_SHA="${CI_COMMIT_SHA:-${SAUCI_SHA:-}}"',
    'export CI_COMMIT_SHORT_SHA="$(printf \'%.8s\' "$CI_COMMIT_SHA")"',
)


def _shell_value(parts: Sequence[str | tuple[str]]) -> str:
    return "".join(shlex.quote(p) if isinstance(p, str) else f'"${{{p[0]}}}"' for p in parts if p)


def _commands(lines: Sequence[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        out.append("printf '%s\\n' " + shlex.quote("$ " + line))
        out.append(line)
    return out


def _exports(runtime_env: dict[str, list[str | tuple[str]]]) -> list[str]:
    lines = list(_PRELUDE)
    for name, parts in runtime_env.items():
        value = _shell_value(parts) or "''"
        lines.append(f"export {name}={value}")
    return lines


def job_script(
    before: Sequence[str],
    script: Sequence[str],
    runtime_env: dict[str, list[str | tuple[str]]],
    allowed_codes: Sequence[int] = (),
) -> tuple[str, ...]:
    """The lines of the step's script (``before_script`` then ``script``).

    ``allowed_codes`` (``allow_failure: exit_codes``): the script ending with
    one of them is printed and turned into success, so the jobs after it run.
    """
    lines = _exports(runtime_env)
    main = _commands([*before, *script])
    if not allowed_codes:
        return (*lines, *main)
    codes = " ".join(str(c) for c in allowed_codes)
    return (
        *lines, "set +e", "(", _STRICT, *main, ")", "sauci_script_status=$?",
        f"for sauci_code in {codes}; do",
        '  if [ "$sauci_script_status" -eq "$sauci_code" ]; then',
        "    printf '%s\\n' \"exit code $sauci_code is allowed by allow_failure: exit_codes\"",
        "    sauci_script_status=0",
        "  fi",
        "done",
        'exit "$sauci_script_status"',
    )  # fmt: skip


def after_script(
    after: Sequence[str], runtime_env: dict[str, list[str | tuple[str]]]
) -> tuple[str, ...]:
    """The lines of ``after_script`` as the step's ``after_run``: from the
    project directory, ``CI_JOB_STATUS`` from how the script ended (GitLab's
    ``success``, ``failed`` or ``canceled``; a timeout is ``failed``)."""
    if not after:
        return ()
    return (
        *_exports(runtime_env),
        'case "${SAUCI_STEP_STATUS:-failed}" in passed) CI_JOB_STATUS=success ;; '
        "cancelled) CI_JOB_STATUS=canceled ;; *) CI_JOB_STATUS=failed ;; esac",
        "export CI_JOB_STATUS",
        'cd "$CI_PROJECT_DIR"',
        *_commands(after),
    )
