"""What a GitLab job knows about its build (:class:`GitLabContext`), the
predefined ``CI_*`` variables made from it, and ``$VAR`` expansion as GitLab
does it (``$VAR``, ``${VAR}``, ``$$`` for a literal ``$``; an unknown name
expands to nothing; never a command).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from sauci.exceptions import ConfigError

__all__ = [
    "RUNTIME", "GitLabContext", "bad_name", "expand", "expand_parts", "predefined", "slug",
]  # fmt: skip

# Known only when the step runs (its workspace, the build's id and commit):
# the job's script sets them from SauCI's own variables.
RUNTIME = frozenset({"CI_PROJECT_DIR", "CI_BUILDS_DIR", "CI_PIPELINE_ID", "CI_JOB_ID"})
_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_MAX_ROUNDS = 10
MAX_EXPANDED = 1 << 20  # characters (and pieces) one expansion may make
# A build's event (SauCI's, or GitHub's from the workflow options) as GitLab's pipeline source.
_SOURCES = {
    "cron": "schedule", "manual": "web", "workflow_dispatch": "web", "webhook": "push",
    "cli": "push",
}  # fmt: skip
_GITLAB_SOURCES = ("push", "web", "schedule", "api", "trigger")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def bad_name(name: object) -> str | None:
    """Why ``name`` cannot be a variable (GitLab's rule: letters, digits, ``_``), or None."""
    if isinstance(name, str) and _NAME.fullmatch(name) and len(name) <= 255:
        return None
    return f"{str(name)[:40]!r} is not a variable name (letters, digits and _, not first a digit)"


@attrs.frozen(kw_only=True)
class GitLabContext:
    """The build a ``.gitlab-ci.yml`` is planned for.

    ``source`` is GitLab's ``CI_PIPELINE_SOURCE`` (push, web, schedule,
    merge_request_event, api, trigger); ``changed`` the paths the push
    changed, None when unknown (``changes:`` then holds, as GitLab does when
    it has nothing to compare with).
    """

    branch: str | None = "main"
    tag: str | None = None
    sha: str = ""
    source: str = "push"
    default_branch: str = "main"
    project: str = "project"
    changed: tuple[str, ...] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else tuple(v)
    )
    message: str = ""
    # A merge-request pipeline's CI_MERGE_REQUEST_* variables ({} for any other).
    merge_request: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def for_build(
        cls,
        *,
        ref: str,
        sha: str = "",
        event: str = "push",
        project: str = "project",
        default_branch: str = "main",
        changed: tuple[str, ...] | None = None,
        message: str = "",
        merge_request: Mapping[str, str] | None = None,
    ) -> GitLabContext:
        """The context of a SauCI build (its ref, sha and event: SauCI's
        ``cron``/``manual`` or GitHub's ``schedule``/``workflow_dispatch``)."""
        tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None
        branch = None if tag is not None else (ref.removeprefix("refs/heads/") or None)
        source = _SOURCES.get(event, event if event in _GITLAB_SOURCES else "push")
        if merge_request:  # GitLab sets no CI_COMMIT_BRANCH in a merge-request pipeline
            source, branch = "merge_request_event", None
        return cls(
            branch=branch,
            tag=tag,
            sha=sha,
            source=source,
            project=project,
            default_branch=default_branch,
            changed=changed,
            message=message,
            merge_request=dict(merge_request or {}),
        )

    @property
    def ref_name(self) -> str:
        source = self.merge_request.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "")
        return self.tag or self.branch or source


def slug(text: str) -> str:
    """GitLab's ``*_SLUG``: lower case, other than ``a-z0-9`` replaced by ``-``, 63 chars."""
    return re.sub(r"[^a-z0-9]", "-", text.lower())[:63].strip("-")


def predefined(context: GitLabContext) -> dict[str, str]:
    """The pipeline-wide predefined variables GitLab sets, from ``context``."""
    out = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_SERVER": "yes",
        "CI_PIPELINE_SOURCE": context.source,
        "CI_DEFAULT_BRANCH": context.default_branch,
        "CI_COMMIT_REF_NAME": context.ref_name,
        "CI_COMMIT_REF_SLUG": slug(context.ref_name),
        "CI_PROJECT_NAME": context.project,
        "CI_PROJECT_PATH": context.project,
    }
    if context.sha:
        out["CI_COMMIT_SHA"] = context.sha
        out["CI_COMMIT_SHORT_SHA"] = context.sha[:8]
    if context.message:
        out["CI_COMMIT_MESSAGE"] = context.message
        out["CI_COMMIT_TITLE"] = context.message.split("\n", 1)[0]
        out["CI_COMMIT_DESCRIPTION"] = context.message.partition("\n\n")[2]
    if context.branch is not None:
        out["CI_COMMIT_BRANCH"] = context.branch
    if context.tag is not None:
        out["CI_COMMIT_TAG"] = context.tag
    out.update(context.merge_request)
    return out


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with each ``$VAR`` replaced by its value (runtime ones by nothing)."""
    return "".join(p if isinstance(p, str) else "" for p in expand_parts(text, variables))


def expand_parts(text: str, variables: Mapping[str, str]) -> list[str | tuple[str]]:
    """``text`` expanded, runtime variables left as ``(name,)`` for the shell to fill.

    ConfigError when it expands past :data:`MAX_EXPANDED` characters: variables
    that name each other several times each (``A: $B$B``, ``B: $C$C``, ...)
    double at each of the ten rounds, and a pushed file of 30 such lines
    expanded to billions of characters in the server's memory.
    """
    parts: list[str | tuple[str]] = []
    _expand_into(parts, text, variables, 0, [MAX_EXPANDED])
    return parts


def _expand_into(
    parts: list[str | tuple[str]],
    text: str,
    variables: Mapping[str, str],
    depth: int,
    left: list[int],
) -> None:
    pos = 0
    for match in _REFERENCE.finditer(text):
        _add(parts, text[pos : match.start()], left)
        pos = match.end()
        name = match.group(1) or match.group(2)
        if name is None:  # "$$"
            parts.append("$")
        elif name in RUNTIME:
            parts.append((name,))
        elif depth < _MAX_ROUNDS and name in variables:
            _expand_into(parts, variables[name], variables, depth + 1, left)
    _add(parts, text[pos:], left)


def _add(parts: list[str | tuple[str]], piece: str, left: list[int]) -> None:
    left[0] -= len(piece) + 1  # an empty piece counts: "$A$A..." of empty values too
    if left[0] < 0:
        raise ConfigError(
            f"a variable expands to more than {MAX_EXPANDED} characters "
            "(variables that name each other repeat their values at each round)"
        )
    parts.append(piece)
