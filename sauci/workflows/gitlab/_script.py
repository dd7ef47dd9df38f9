"""A GitLab job's ``before_script``, ``script`` and ``after_script`` as one bash script.

A job runs in bash when there is one (the sandbox's, the image's), else in
sh, as GitLab's runner chooses. ``before_script`` and ``script`` run in one shell that stops at the first
failing command, each command echoed as ``$ command`` as GitLab's log shows
it. ``after_script`` runs after them, in its own shell, from the project
directory, even when the script failed, with ``CI_JOB_STATUS`` set; its
failure is printed and does not change the job's status. Variables only
known when the step runs (``CI_PROJECT_DIR``, ...) are set first, from
SauCI's own; values built on them are assembled from quoted pieces, so
nothing in a variable is ever run.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

__all__ = ["SHELL", "job_script"]

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
    'export CI_PROJECT_DIR="$PWD" CI_BUILDS_DIR="$(dirname "$PWD")"',
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


def job_script(
    before: Sequence[str],
    script: Sequence[str],
    after: Sequence[str],
    runtime_env: dict[str, list[str | tuple[str]]],
    allowed_codes: Sequence[int] = (),
) -> tuple[str, ...]:
    """The lines of the step's bash script.

    ``allowed_codes`` (``allow_failure: exit_codes``): the script ending with
    one of them is printed and turned into success, so the jobs after it run.
    """
    lines = list(_PRELUDE)
    for name, parts in runtime_env.items():
        value = _shell_value(parts) or "''"
        lines.append(f"export {name}={value}")
    main = _commands([*before, *script])
    if not after and not allowed_codes:
        return (*lines, *main)
    lines += ["set +e", "(", _STRICT, *main, ")", "sauci_script_status=$?"]
    if after:
        lines += [
            'if [ "$sauci_script_status" -eq 0 ]; then export CI_JOB_STATUS=success; '
            "else export CI_JOB_STATUS=failed; fi",
            'cd "$CI_PROJECT_DIR"',
            "(",
            _STRICT,
            *_commands(after),
            ")",
            "sauci_after_status=$?",
            "if [ \"$sauci_after_status\" -ne 0 ]; then printf '%s\\n' "
            '"after_script exited with $sauci_after_status; the job\'s status comes from its script"; fi',
        ]
    if allowed_codes:
        codes = " ".join(str(c) for c in allowed_codes)
        lines += [
            f"for sauci_code in {codes}; do",
            '  if [ "$sauci_script_status" -eq "$sauci_code" ]; then',
            "    printf '%s\\n' \"exit code $sauci_code is allowed by allow_failure: exit_codes\"",
            "    sauci_script_status=0",
            "  fi",
            "done",
        ]
    return (*lines, 'exit "$sauci_script_status"')
