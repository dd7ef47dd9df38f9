"""The actions SauCI runs itself, matched by ``owner/repo`` whatever version is pinned.

Each built-in turns a ``uses:`` step into a job-driver step (or a note) and
may add to the SauCI step of its job: a cache, artifacts, JUnit reports, or
a reason to skip the matrix entry. Any other action is a problem naming it,
unless the operator maps it to a command (``actions`` in the settings).
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci.workflows.github.pythons import find_python
from sauci.workflows.github.version_files import version_file

__all__ = ["EXTERNAL", "ActionResult", "JobParts", "action_name", "builtin_action"]

# Uploads to services outside this machine: skipped with a note.
EXTERNAL = frozenset(
    {
        "codecov/codecov-action",
        "coverallsapp/github-action",
        "pypa/gh-action-pypi-publish",
        "softprops/action-gh-release",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
        "github/codeql-action",
        "actions/attest-build-provenance",
        "sigstore/gh-action-sigstore-python",
    }
)


@attrs.define
class JobParts:
    """What a job's actions add to its SauCI step."""

    cache: tuple[list[str], str, list[str]] | None = None  # paths, key, restore keys
    artifacts: list[str] = attrs.field(factory=list)
    junit: list[str] = attrs.field(factory=list)
    skip: str | None = None  # the matrix entry is skipped, with this reason
    notes: list[str] = attrs.field(factory=list)
    download: bool = False  # download-artifact: the step gets its ancestors' artifacts
    missing_python: str = "skip"  # the operator's choice: "skip" the entry or "fail" it


@attrs.frozen
class ActionResult:
    """A driver step (None: the action adds nothing that runs), or a problem."""

    step: dict[str, Any] | None = None
    problem: str | None = None


def action_name(uses: str) -> tuple[str, str]:
    """``owner/repo`` (lower case, sub-paths kept only for the owner/repo match) and the ref."""
    name, _, ref = uses.partition("@")
    parts = name.strip().split("/")
    return "/".join(parts[:2]).lower(), ref


def _note(text: str) -> dict[str, Any]:
    return {"kind": "note", "note": text}


def _lines(value: Any) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def _truthy_input(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def builtin_action(
    name: str,
    inputs: Mapping[str, Any],
    parts: JobParts,
    *,
    workspace: Path | None,
    path: str | None = None,
    mapped: Mapping[str, str] | None = None,
) -> ActionResult:
    """The job-driver step for the action ``name`` (``owner/repo``) with ``inputs``."""
    if mapped and name in mapped:
        # As GitHub hands inputs to an action: INPUT_<NAME> variables.
        env = {"INPUT_" + k.upper().replace(" ", "_"): str(v) for k, v in inputs.items()}
        return ActionResult({"kind": "run", "run": mapped[name], "input_env": env})
    handler = _HANDLERS.get(name)
    if handler is not None:
        return handler(inputs, parts, workspace, path)
    if name in EXTERNAL:
        return ActionResult(_note(f"{name} uploads to a service outside this machine: skipped"))
    return ActionResult(
        problem=f"the action {name!r} is not one SauCI runs itself (checkout, setup-python, "
        "setup-uv, cache, upload-artifact, download-artifact, alls-green); map it to a command under "
        "[actions] in sauci.toml (docs/workflows.md#other-actions)"
    )


def _checkout(
    inputs: Mapping[str, Any], parts: JobParts, workspace: Path | None, path: str | None
) -> ActionResult:
    if inputs.get("repository"):
        return ActionResult(
            problem="actions/checkout of another repository ('repository:') is not supported"
        )
    where = str(inputs.get("path") or "").strip()
    script = []
    if str(inputs.get("submodules", "")).lower() in ("true", "recursive"):
        recursive = " --recursive" if str(inputs.get("submodules")).lower() == "recursive" else ""
        script.append(f"if [ -e .git ]; then git submodule update --init{recursive}; fi")
    if where and posixpath.normpath(where) != ".":
        return _checkout_into(where, script)
    if not script:
        return ActionResult(_note("the workspace already holds the commit" + _depth(inputs)))
    return ActionResult({"kind": "run", "run": "\n".join(script)})


def _depth(inputs: Mapping[str, Any]) -> str:
    """What ``fetch-depth`` gives: always the whole history and the tags. The
    workspace is a worktree of SauCI's clone, whose objects, refs and
    ``shallow`` file every build of the repository shares, so it is never made
    shallow (docs/workflows.md#github-actions-what-sauci-does-not-do)."""
    depth = str(inputs.get("fetch-depth", 1)).strip()
    if depth == "0":
        return " (fetch-depth 0: the full history and the tags)"
    default = " (GitHub's default)" if "fetch-depth" not in inputs else ""
    return (
        f" (fetch-depth {depth}{default}: the workspace keeps the full history and the tags; "
        "SauCI's clone is shared by every build, so it is not made shallow)"
    )


def _checkout_into(where: str, script: list[str]) -> ActionResult:
    """``path:``: a copy of the checkout at ``where`` under the workspace (which holds
    the commit at its root too). The path is handed over as a variable, never as script."""
    normal = posixpath.normpath(where)
    if "${{" in where or normal.startswith(("/", "../")) or normal == ".." or "\0" in where:
        return ActionResult(
            problem=f"actions/checkout 'path: {where}' must be a directory inside the workspace"
        )
    if normal.split("/")[0] == ".sauci-gha":
        return ActionResult(problem="actions/checkout 'path:' cannot be SauCI's .sauci-gha")
    script = [
        *script,  # submodules first, so the copy has them
        'dest="$SAUCI_CHECKOUT_PATH"; top="${dest%%/*}"; mkdir -p -- "$dest"',
        'tar --exclude="./$top" --exclude=./.sauci-gha -cf - . | tar -xf - -C "$dest"',
        'echo "the checkout copied to $dest"',
    ]
    return ActionResult(
        {
            "kind": "run",
            "run": "\n".join(script),
            "shell_template": ["bash", "-e", "{0}"],
            "input_env": {"SAUCI_CHECKOUT_PATH": normal},
        }
    )


def _setup_python(
    inputs: Mapping[str, Any], parts: JobParts, workspace: Path | None, path: str | None
) -> ActionResult:
    versions = _lines(inputs.get("python-version"))
    if not versions and inputs.get("python-version-file"):
        file = str(inputs["python-version-file"])
        if workspace is None:
            return ActionResult(problem="'python-version-file' needs the workspace to read")
        found = version_file(workspace, file)
        if isinstance(found, str):
            return ActionResult(problem=found)
        versions = found
    if not versions:
        versions = ["3"]  # the runner's default Python: the newest on this machine
    version = versions[-1]  # setup-python installs all; the last is the default
    if inputs.get("cache"):
        parts.notes.append(
            f"setup-python cache: {inputs['cache']}: pip and uv downloads are cached by SauCI for every step"
        )
    _need_python(version, parts, path, _truthy_input(inputs.get("allow-prereleases", False)))
    return ActionResult({"kind": "python", "version": version})


def _need_python(version: str, parts: JobParts, path: str | None, prerelease: bool) -> None:
    """A Python the machine lacks skips the matrix entry with the reason, or
    (the operator's ``missing = "fail"``, or a pre-release asked for) fails it."""
    if "${{" in version or parts.skip is not None or find_python(version, path) is not None:
        return
    if parts.missing_python == "fail" or prerelease:
        why = "allow-prereleases" if parts.missing_python == "skip" else "missing = fail"
        parts.notes.append(f"python {version} is not on this machine; the job fails ({why})")
    else:
        parts.skip = f"skipped: python {version} is not installed on this machine"


def _setup_uv(
    inputs: Mapping[str, Any], parts: JobParts, workspace: Path | None, path: str | None
) -> ActionResult:
    if shutil.which("uv", path=path) is None and parts.skip is None:
        parts.skip = "skipped: astral-sh/setup-uv: uv is not installed on this machine"
    script = ['echo "uv: $(command -v uv)"; uv --version']
    env = {}
    version = str(inputs.get("python-version") or "").strip()
    if version:
        _need_python(version, parts, path, prerelease=False)  # as setup-python does
        env["SAUCI_UV_PYTHON"] = version  # a variable, never script
        script += [
            'if ! uv python find "$SAUCI_UV_PYTHON" >/dev/null; then',
            "  echo \"sauci: no interpreter for python-version '$SAUCI_UV_PYTHON'\"; exit 1",
            "fi",
            'echo "UV_PYTHON=$SAUCI_UV_PYTHON" >> "$GITHUB_ENV"',
        ]
    if _truthy_input(inputs.get("activate-environment", False)):
        script.append(
            'uv venv .venv && echo "$PWD/.venv/bin" >> "$GITHUB_PATH" && echo "VIRTUAL_ENV=$PWD/.venv" >> "$GITHUB_ENV"'
        )
    return ActionResult(
        {
            "kind": "run",
            "run": "\n".join(script),
            "shell_template": ["bash", "-e", "{0}"],
            "input_env": env,
        }
    )


def _cache(
    inputs: Mapping[str, Any], parts: JobParts, workspace: Path | None, path: str | None
) -> ActionResult:
    paths = _lines(inputs.get("path"))
    key = str(inputs.get("key") or "").strip()
    if not paths or not key:
        return ActionResult(problem="actions/cache needs 'path' and 'key'")
    if parts.cache is not None:
        parts.notes.append(
            "a second actions/cache in the job is ignored: SauCI keeps one cache per job"
        )
        return ActionResult(_note("ignored: SauCI keeps one cache per job"))
    parts.cache = (paths, key, _lines(inputs.get("restore-keys")))
    # cache-hit: "true" only when the exact key was restored (not a restore-key).
    note = _note("SauCI's cache: restored before the job started, saved after it passes")
    return ActionResult({**note, "outputs_from_env": {"cache-hit": "SAUCI_CACHE_HIT"}})


def _upload_artifact(
    inputs: Mapping[str, Any], parts: JobParts, workspace: Path | None, path: str | None
) -> ActionResult:
    lines = _lines(inputs.get("path"))
    globs = [g for g in lines if not g.startswith("!")]
    if not globs:
        return ActionResult(problem="actions/upload-artifact needs 'path'")
    for glob in globs:
        pattern = glob.rstrip("/")
        if pattern.endswith("/") or os.path.splitext(pattern)[1] == "":
            pattern = pattern + "/**"  # a directory: everything in it
        parts.artifacts.append(pattern)
        if pattern.endswith(".xml"):
            parts.junit.append(pattern)  # a JUnit report shows its tests in the page
    # The driver writes the artifact's index (name, root, files) for download-artifact.
    return ActionResult(
        {
            "kind": "upload",
            "artifact": str(inputs.get("name") or "artifact"),
            "paths": lines,
            "hidden": _truthy_input(inputs.get("include-hidden-files", False)),
            "if_no_files_found": str(inputs.get("if-no-files-found") or "warn").lower(),
        }
    )


def _download_artifact(
    inputs: Mapping[str, Any], parts: JobParts, workspace: Path | None, path: str | None
) -> ActionResult:
    for key in ("repository", "run-id", "github-token", "artifact-ids"):
        if inputs.get(key):
            return ActionResult(
                problem=f"actions/download-artifact with {key!r} is not supported: "
                "SauCI gives a job the artifacts of the jobs it needs in the same build"
            )
    parts.download = True
    return ActionResult(
        {
            "kind": "download",
            "artifact": str(inputs.get("name") or ""),
            "pattern": str(inputs.get("pattern") or ""),
            "merge": _truthy_input(inputs.get("merge-multiple", False)),
            "path": str(inputs.get("path") or ""),
        }
    )


def _alls_green(
    inputs: Mapping[str, Any], parts: JobParts, workspace: Path | None, path: str | None
) -> ActionResult:
    return ActionResult(
        _note("every job this one needs ended as allowed (SauCI checked them before it started)")
    )


_Handler = Callable[[Mapping[str, Any], JobParts, "Path | None", "str | None"], ActionResult]
_HANDLERS: dict[str, _Handler] = {
    "actions/checkout": _checkout,
    "actions/setup-python": _setup_python,
    "astral-sh/setup-uv": _setup_uv,
    "actions/cache": _cache,
    "actions/upload-artifact": _upload_artifact,
    "actions/download-artifact": _download_artifact,
    "re-actors/alls-green": _alls_green,
}
