"""Whether a job is in the pipeline of a build: ``rules``, ``only``/``except``
and ``workflow: rules``, decided for a :class:`GitLabContext` as GitLab
decides them when it creates a pipeline.

``rules``: the first rule whose ``if``, ``changes`` and ``exists`` all hold
decides (its ``when``, ``allow_failure``, ``variables``); when none holds the
job is not added. ``only``/``except`` (when there are no rules): refs
(keywords, names, ``/regex/``), ``variables`` and ``changes``, the keys of
one of them joined with "and"; with neither, ``only: [branches, tags]``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

from sauci.core.workspace_files import matching_files, split_glob
from sauci.workflows.gitlab._condition import ConditionError, evaluate, parse
from sauci.workflows.gitlab._merge import Report
from sauci.workflows.gitlab._variables import GitLabContext, bad_name, expand
from sauci.workflows.gitlab._yaml import Map, Pos, Seq

__all__ = ["Decision", "decide", "glob_regex"]

WHENS = ("on_success", "on_failure", "always", "manual", "never")
_RULE_KEYS = ("if", "changes", "exists", "when", "allow_failure", "variables")
_REF_KEYWORDS = {
    "pushes": "push", "schedules": "schedule", "web": "web", "api": "api",
    "triggers": "trigger", "pipelines": "pipeline", "merge_requests": "merge_request_event",
    "external": "external", "chat": "chat", "external_pull_requests": "external_pull_request_event",
}  # fmt: skip


@attrs.frozen(kw_only=True)
class Decision:
    """What the rules say of one job: in or out (with why), and what they set."""

    included: bool
    reason: str = ""
    when: str | None = None
    allow_failure: bool | None = None
    variables: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class _Scope:
    """What one build's rules are decided against, and where their problems go."""

    variables: dict[str, str]
    context: GitLabContext
    root: Path
    report: Report


def decide(
    owner: str,
    job: Map,
    variables: dict[str, str],
    context: GitLabContext,
    root: Path,
    report: Report,
) -> Decision:
    """The decision for ``job`` (``owner`` names it in messages)."""
    scope = _Scope(variables, context, root, report)
    if "rules" in job:
        for key in ("only", "except"):
            if key in job:
                report(job.where(key), f"{owner}: rules and {key} cannot be used together")
        return _rules(owner, job["rules"], job.where("rules"), scope)
    only = job.get("only", Seq(job.pos))
    if "only" not in job:
        only.extend(["branches", "tags"])
    if not _refs_clause(only, job.where("only"), scope, empty=True):
        return Decision(included=False, reason=f"only: does not match this build ({_ref(context)})")
    if "except" in job and _refs_clause(job["except"], job.where("except"), scope, empty=False):
        return Decision(included=False, reason=f"except: matches this build ({_ref(context)})")
    return Decision(included=True)


def _ref(context: GitLabContext) -> str:
    if context.tag is not None:
        return f"tag {context.tag!r}, {context.source}"
    return f"branch {context.branch!r}, {context.source}"


def _rules(owner: str, rules: Any, where: Pos, scope: _Scope) -> Decision:
    report = scope.report
    if not isinstance(rules, Seq):
        report(where, f"{owner}: rules: expected a list of rules")
        return Decision(included=False, reason="invalid rules")
    for index, rule in enumerate(rules):
        at = rules.where(index)
        if isinstance(rule, Seq):  # a list of rules from !reference, flattened as GitLab does
            inner = _rules(owner, rule, at, scope)
            if inner.included or inner.reason != "no rule matches":
                return inner
            continue
        if not isinstance(rule, Map):
            report(at, f"{owner}: a rule is a mapping (if, changes, exists, when, ...)")
            continue
        for key in rule:
            if key not in _RULE_KEYS:
                report(rule.where(key), f"{owner}: rules: {key} is not supported")
        holds = True
        if "if" in rule:
            holds = _condition(rule["if"], rule.where("if"), scope)
        if holds and "changes" in rule:
            holds = _changes(rule["changes"], rule.where("changes"), scope)
        if holds and "exists" in rule:
            holds = _exists(rule["exists"], rule.where("exists"), scope)
        if not holds:
            continue
        when = rule.get("when")
        if when is not None and when not in WHENS:
            report(rule.where("when"), f"{owner}: when: expected one of {', '.join(WHENS)}")
        if when == "never":
            return Decision(included=False, reason=f"rule {index + 1} says when: never")
        allow = rule.get("allow_failure")
        if allow is not None and not isinstance(allow, bool):
            report(rule.where("allow_failure"), f"{owner}: rules: allow_failure is true or false")
            allow = None
        values = rule.get("variables")
        if values is None:
            values = {}
        elif isinstance(values, Map) and any(bad_name(k) for k in values):
            report(
                rule.where("variables"),
                f"{owner}: rules: variables: {bad_name(next(k for k in values if bad_name(k)))}",
            )
            values = {}
        elif not isinstance(values, Map):
            report(rule.where("variables"), f"{owner}: rules: variables is a mapping")
            values = {}
        return Decision(
            included=True, when=when, allow_failure=allow,
            variables={k: str(v) for k, v in values.items()},
        )  # fmt: skip
    return Decision(included=False, reason="no rule matches")


def _condition(text: Any, where: Pos, scope: _Scope) -> bool:
    if not isinstance(text, str):
        scope.report(where, 'if: expected an expression like $CI_COMMIT_BRANCH == "main"')
        return False
    try:
        return evaluate(parse(text), scope.variables)
    except ConditionError as exc:
        scope.report(where, f"if: {exc}")
        return False


def _patterns(value: Any, where: Pos, scope: _Scope) -> list[str]:
    report = scope.report
    if isinstance(value, Map):
        for key in value:
            if key != "paths":
                report(value.where(key), f"{key} is not supported (SauCI compares with the push)")
        value = value.get("paths")
    if not isinstance(value, Seq) or not all(isinstance(v, str) for v in value):
        report(where, "expected a list of file patterns")
        return []
    return [expand(v, scope.variables) for v in value]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A GitLab file pattern (``**``, ``*``, ``?``, ``{a,b}``) as a regex over paths."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            c = pattern[i]
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c == "{" and "}" in pattern[i:]:
                end = pattern.index("}", i)
                out.append("(?:" + "|".join(map(re.escape, pattern[i + 1 : end].split(","))) + ")")
                i = end
            else:
                out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def _changes(value: Any, where: Pos, scope: _Scope) -> bool:
    patterns = _patterns(value, where, scope)
    changed = scope.context.changed
    if changed is None:
        return True  # nothing to compare with: GitLab says the files changed
    regexes = [glob_regex(p) for p in patterns]
    return any(r.fullmatch(path) for r in regexes for path in changed)


def _exists(value: Any, where: Pos, scope: _Scope) -> bool:
    for pattern in _patterns(value, where, scope):
        parts = split_glob(pattern.lstrip("/"))
        if parts is None:
            scope.report(where, f"exists: {pattern!r} is outside the repository")
            continue
        for _ in matching_files(scope.root, [parts], directories=False):
            return True
    return False


def _refs_clause(value: Any, where: Pos, scope: _Scope, *, empty: bool) -> bool:
    """Whether an ``only`` (``empty``) or ``except`` value holds; refs
    default to branches and tags in ``only``."""
    report = scope.report
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value_map: Any = {"refs": value}
    elif isinstance(value, Map):
        value_map = value
        for key in value:
            if key not in ("refs", "variables", "changes"):
                report(value.where(key), f"{key} is not supported in only/except")
    else:
        report(where, "expected a list of refs or a mapping of refs, variables, changes")
        return False
    refs = value_map.get("refs")
    if refs is None and empty:
        refs = ["branches", "tags"]
    if isinstance(refs, str):
        refs = [refs]
    if refs is not None and not isinstance(refs, list):
        report(where, "only/except: refs is a list")
        refs = []
    results = []  # each key: whether one of its conditions matches
    if refs is not None:
        results.append(any([_ref_matches(r, where, scope) for r in refs]))
    if "variables" in value_map:
        exprs = value_map["variables"]
        exprs = [exprs] if isinstance(exprs, str) else exprs
        if not isinstance(exprs, list):
            report(where, "only/except: variables is a list of expressions")
            exprs = []
        results.append(any([_condition(e, where, scope) for e in exprs]))
    if "changes" in value_map:
        results.append(_changes(value_map["changes"], where, scope))
    # only: every key matches; except: any key matches (GitLab's documented rule)
    return all(results) if empty else any(results)


def _ref_matches(ref: Any, where: Pos, scope: _Scope) -> bool:
    context, report = scope.context, scope.report
    if not isinstance(ref, str):
        report(where, "only/except: a ref is text")
        return False
    if ref == "branches":
        return context.branch is not None
    if ref == "tags":
        return context.tag is not None
    if ref in _REF_KEYWORDS:
        return context.source == _REF_KEYWORDS[ref]
    if "@" in ref:
        report(where, f"only/except: {ref!r} names a project; SauCI builds one repository")
        return False
    if len(ref) > 1 and ref.startswith("/") and re.fullmatch(r"/.*/[a-z]*", ref, re.S):
        body, _, flags = ref[1:].rpartition("/")
        try:
            regex = re.compile(body, re.I if "i" in flags else 0)
        except re.error as exc:
            report(where, f"only/except: invalid regex {ref!r}: {exc}")
            return False
        return regex.search(context.ref_name) is not None
    return ref == context.ref_name
