"""The keys of a GitLab job, one small reader each: ``image``, ``services``,
``cache``, ``artifacts``, ``timeout``, ``retry``, ``allow_failure`` and the
script lists. Each reader returns SauCI's value and reports a problem at the
key for what it cannot take.
"""

from __future__ import annotations

import re
from typing import Any

from sauci.core.cache_key import key_problems
from sauci.core.step_parts import Cache, Service
from sauci.workflows.gitlab._merge import Report
from sauci.workflows.gitlab._variables import bad_name, expand
from sauci.workflows.gitlab._yaml import Map, Pos, Seq

__all__ = [
    "read_allow_failure", "read_artifacts", "read_cache", "read_image", "read_retry",
    "read_script", "read_services", "read_timeout",
]  # fmt: skip

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*(?:and\s+|,\s*)?", re.I)
_KEY_CHARS = re.compile(r"[^A-Za-z0-9._+=@,-]")


def read_script(value: Any, where: Pos, key: str, report: Report) -> list[str]:
    """A script as a list of commands; nested lists (from !reference) flattened."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Seq):
        report(where, f"{key}: expected a command or a list of commands")
        return []
    out: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, Seq):
            out.extend(read_script(item, value.where(index), key, report))
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            out.append(str(item))
        else:
            report(value.where(index), f"{key}: each command is text")
    return out


def read_timeout(value: Any, where: Pos, report: Report) -> float | None:
    """GitLab's human durations: ``1h 30m``, ``3 hours``, ``90 minutes``, ``600``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value) if value > 0 else _bad_timeout(value, where, report)
    if not isinstance(value, str):
        return _bad_timeout(value, where, report)
    pos, total = 0, 0.0
    while pos < len(value.rstrip()):
        match = _DURATION.match(value, pos)
        if match is None or match.end() == pos:
            return _bad_timeout(value, where, report)
        unit = match.group(2).lower() or "s"
        if unit not in _UNITS:
            return _bad_timeout(value, where, report)
        total += float(match.group(1)) * _UNITS[unit]
        pos = match.end()
    return total if total > 0 else _bad_timeout(value, where, report)


def _bad_timeout(value: Any, where: Pos, report: Report) -> float | None:
    report(where, f"timeout: expected a duration like '1h 30m' or '90 minutes', got {value!r}")
    return None


# GitLab's retry: when (its failure reasons) as the kinds SauCI tells apart
# (sauci.core.step_retry): a failing script is "exit"; a job's timeout
# ("job_execution_timeout"; "stuck_or_timeout_failure" taken as the same) is
# "timeout"; the runner failing (no image, the daemon gone) is "sandbox"; a
# failure without a reason from the script (out of memory, the process
# limit) is "unknown_failure". GitLab's other reasons never happen here.
RETRY_WHENS: dict[str, tuple[str, ...]] = {
    "always": ("any",), "script_failure": ("exit",),
    "stuck_or_timeout_failure": ("timeout",), "job_execution_timeout": ("timeout",),
    "runner_system_failure": ("sandbox",), "unknown_failure": ("resource",),
    **dict.fromkeys((
        "api_failure", "runner_unsupported", "stale_schedule", "archived_failure",
        "unmet_prerequisites", "scheduler_failure", "data_integrity_failure",
        "missing_dependency_failure", "runner_provisioning_timeout",
    ), ()),
}  # fmt: skip


def read_retry(
    value: Any, where: Pos, report: Report
) -> tuple[int, tuple[int, ...], tuple[str, ...]]:
    """``retry: 2`` or ``{max: 2, when: [...], exit_codes: [...]}``:
    (retries, exit codes, failure kinds), GitLab's rule: ``when`` defaults to
    ``always`` unless ``exit_codes`` is given, and an attempt is retried when
    its exit code is listed or its kind is."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2:
        return value, (), ("any",)
    if not isinstance(value, Map):
        report(where, "retry: expected 0, 1, 2 or {max: N, when: [...], exit_codes: [...]}")
        return 0, (), ()
    retries = value.get("max", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 2:
        report(value.where("max"), "retry: max is 0, 1 or 2")
        retries = 0
    codes = value.get("exit_codes", [])
    codes = [codes] if isinstance(codes, int) else codes
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) for c in codes
    ):
        report(value.where("exit_codes"), "retry: exit_codes is a list of numbers")
        codes = []
    whens = value.get("when", [] if "exit_codes" in value else ["always"])
    whens = [whens] if isinstance(whens, str) else whens
    kinds: list[str] = []
    if not isinstance(whens, list):
        report(value.where("when"), "retry: when is a failure type or a list of them")
        whens = []
    for index, when in enumerate(whens):
        if when not in RETRY_WHENS:
            at = whens.where(index) if isinstance(whens, Seq) else value.where("when")
            report(at, f"retry: when: {when!r} is not one of {', '.join(RETRY_WHENS)}")
            continue
        kinds.extend(RETRY_WHENS[when])
    for key in value:
        if key not in ("max", "when", "exit_codes"):
            report(value.where(key), f"retry: {key} is not supported")
    return retries, tuple(codes), tuple(dict.fromkeys(kinds))


def read_allow_failure(value: Any, where: Pos, report: Report) -> tuple[bool, tuple[int, ...]]:
    """``true``/``false`` or ``{exit_codes: [...]}``: (allowed, only for these codes)."""
    if isinstance(value, bool):
        return value, ()
    if isinstance(value, Map) and set(value) == {"exit_codes"}:
        codes = value["exit_codes"]
        codes = [codes] if isinstance(codes, int) else codes
        if isinstance(codes, list) and codes and all(isinstance(c, int) for c in codes):
            return True, tuple(codes)
    report(where, "allow_failure: expected true, false or {exit_codes: [...]}")
    return False, ()


def read_image(
    value: Any, where: Pos, variables: dict[str, str], report: Report, *, strict: bool = True
) -> str | None:
    """The image name, variables expanded; one that expands to nothing is a
    problem when the job runs in this build (``strict``)."""
    if isinstance(value, Map):
        for key in value:
            if key not in ("name", "pull_policy", "docker"):
                report(value.where(key), f"image: {key} is not supported")
        value = value.get("name")
    if not isinstance(value, str) or not value.strip():
        report(where, "image: expected an image name")
        return None
    name = expand(value, variables)
    if not re.match(r"[A-Za-z0-9]", name) or name.endswith((":", "/")):
        if not strict:
            return None
        report(
            where, f"image: {value!r} is {name!r} here: it uses variables this build does not set"
        )
        return None
    return name


def read_services(
    value: Any, where: Pos, variables: dict[str, str], report: Report
) -> list[Service]:
    if not isinstance(value, Seq):
        report(where, "services: expected a list of images")
        return []
    out: list[Service] = []
    for index, item in enumerate(value):
        at = value.where(index)
        env: dict[str, str] = {}
        command: list[str] = []
        alias = ""
        if isinstance(item, Map):
            for key in item:
                if key not in ("name", "alias", "variables", "command", "pull_policy"):
                    report(item.where(key), f"services: {key} is not supported")
            alias = str(item.get("alias") or "").split(",")[0].strip()
            own = item.get("variables") or Map(item.pos)
            if not isinstance(own, Map):
                report(item.where("variables"), "services: variables is a mapping")
                own = Map(item.pos)
            env = {str(k): expand(str(v), variables) for k, v in own.items() if not bad_name(k)}
            for key in own:
                if (problem := bad_name(key)) is not None:
                    report(own.where(key), f"services: variables: {problem}")
            command = [str(c) for c in item.get("command") or []]
            item = item.get("name")
        if not isinstance(item, str) or not item:
            report(at, "services: expected an image name or {name: image, alias: host}")
            continue
        image = expand(item, variables)
        name = alias or _service_name(image)
        try:
            # GitLab gives a service every variable of its job, then its own.
            env = {**variables, **env}
            out.append(Service(name=name, image=image, env=env, command=command))
        except ValueError as exc:
            report(at, f"services: {exc}")
    return out


def _service_name(image: str) -> str:
    """GitLab's host name for a service image: ``postgres:16`` -> ``postgres``,
    ``registry:5000/group/db:1`` -> ``registry-5000-group-db``."""
    path = image.split("@")[0]
    head, _, last = path.rpartition("/")
    last = last.split(":")[0]
    full = f"{head}/{last}" if head else last
    return re.sub(r"[^a-z0-9-]+", "-", full.lower()).strip("-")[:63].strip("-")


def read_cache(value: Any, where: Pos, variables: dict[str, str], report: Report) -> Cache | None:
    if isinstance(value, Seq):
        if len(value) != 1:
            report(where, "cache: SauCI keeps one cache per job; merge the paths into one")
            return None
        value = value[0]
    if not isinstance(value, Map):
        report(where, "cache: expected {key: ..., paths: [...]}")
        return None
    for name in value:
        if name not in ("key", "paths", "policy", "when", "fallback_keys", "unprotect"):
            report(value.where(name), f"cache: {name} is not supported")
    if value.get("when", "on_success") != "on_success":
        report(value.where("when"), "cache: when other than on_success is not supported")
    paths = value.get("paths")
    if not isinstance(paths, Seq) or not paths:
        if paths is not None:
            report(value.where("paths"), "cache: paths is a list of directories or files")
        return None
    clean: list[str] = []
    for index, path in enumerate(paths):
        text = expand(str(path), variables).rstrip("/").removeprefix("./")
        if (
            not text
            or text.startswith("/")
            or ".." in text.split("/")
            or re.search(r"[*?\[]", text)
        ):
            report(
                paths.where(index),
                f"cache: {path!r} must name a file or directory inside the project",
            )
            continue
        clean.append(text)
    key = _cache_key(value.get("key", "default"), value.where("key"), variables, report)
    fallback = [_sanitise(expand(str(k), variables)) for k in value.get("fallback_keys") or []]
    if not clean or key is None:
        return None
    return Cache(paths=clean, key=key, restore_keys=fallback)


def _cache_key(value: Any, where: Pos, variables: dict[str, str], report: Report) -> str | None:
    if isinstance(value, Map):
        files = value.get("files")
        if not isinstance(files, Seq) or not files or len(files) > 2:
            report(where, "cache: key: files is a list of one or two files")
            return None
        globs = ", ".join("'" + str(f).replace("'", "") + "'" for f in files)
        prefix = _sanitise(expand(str(value.get("prefix", "")), variables))
        key = (prefix + "-" if prefix else "") + "${{ hashFiles(" + globs + ") }}"
    else:
        key = _sanitise(expand(str(value), variables)) or "default"
    problems = key_problems(key)
    if problems:
        report(where, f"cache: key: {problems[0]}")
        return None
    return key


def _sanitise(text: str) -> str:
    return _KEY_CHARS.sub("-", text)[:100]


def read_artifacts(
    value: Any, where: Pos, variables: dict[str, str], report: Report
) -> tuple[list[str], list[str]]:
    """(paths, junit report globs)."""
    if not isinstance(value, Map):
        report(where, "artifacts: expected {paths: [...], reports: {junit: ...}}")
        return [], []
    for key in value:
        if key not in ("paths", "reports", "when", "expire_in", "name", "expose_as", "public"):
            report(value.where(key), f"artifacts: {key} is not supported")
    paths = _globs(value.get("paths", []), value.where("paths"), "paths", variables, report)
    junit: list[str] = []
    reports = value.get("reports")
    if reports is not None:
        if not isinstance(reports, Map):
            report(value.where("reports"), "artifacts: reports is a mapping")
        else:
            for key in reports:
                if key != "junit":
                    report(reports.where(key), f"artifacts: reports: {key} is not supported")
            junit = _globs(
                reports.get("junit", []), reports.where("junit"), "junit", variables, report
            )
    return paths, junit


def _globs(
    value: Any, where: Pos, key: str, variables: dict[str, str], report: Report
) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        report(where, f"artifacts: {key} is a list of paths")
        return []
    out = []
    for item in items:
        text = expand(str(item), variables).removeprefix("./")
        if not text or text.startswith("/") or ".." in text.split("/"):
            report(where, f"artifacts: {item!r} must be a path inside the project")
            continue
        out.append(text.rstrip("/") + "/**" if text.endswith("/") else text)
    return out
