"""Read JUnit XML reports into TestCase results, safely.

Reports come from the build, so they are untrusted: they are parsed with
defusedxml (no DTD, no entity expansion, no external files, no network),
capped in size, and only read from inside the workspace. The secrets the
step received are masked in every text of every case before it is stored.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.models import TestCase
from sauci.core.workspace_files import matching_files, split_glob
from sauci.exceptions import ConfigError

__all__ = ["MAX_REPORT_SIZE", "collect_junit", "mask_cases", "parse_junit"]

log = get_logger(__name__)

MAX_REPORT_SIZE = 64 * 1024 * 1024
_MAX_TEXT = 64 * 1024  # of one failure's text kept per test case


def parse_junit(source: Path | str | bytes, *, name: str | None = None) -> list[TestCase]:
    """The test cases of one JUnit XML report (a path, or its bytes).

    Understands ``<testsuites>`` and ``<testsuite>`` roots, nested suites,
    ``<testcase>`` with ``<failure>``, ``<error>`` and ``<skipped>``, and the
    ``time``, ``classname`` and ``file`` attributes (a case without ``file``
    takes its suite's). Raises ConfigError with a clear message for a
    report that is not well-formed, too large, or has a DTD, entities or
    external references (which are never expanded or fetched).
    """
    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        label = name or "<junit report>"
    else:
        path = Path(source)
        label = name or str(path)
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_REPORT_SIZE + 1)
        except OSError as exc:
            why = exc.strerror or exc
            raise ConfigError(f"{label}: cannot read the JUnit report: {why}") from exc
    if len(data) > MAX_REPORT_SIZE:
        raise ConfigError(f"{label}: the JUnit report is larger than {MAX_REPORT_SIZE >> 20} MiB")
    try:
        # JUnit reports need no DTD; refusing any also stops expat from
        # quietly skipping entities declared in an external DTD.
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ConfigError(
            f"{label}: the JUnit report uses a DTD, XML entities or external references, "
            f"which are refused for safety ({type(exc).__name__})"
        ) from exc
    except ET.ParseError as exc:
        raise ConfigError(f"{label}: not a well-formed XML file: {exc}") from exc
    if _local(root.tag) not in ("testsuites", "testsuite", "testcase"):
        raise ConfigError(
            f"{label}: not a JUnit report (the root element is <{_local(root.tag)}>, "
            "expected <testsuites> or <testsuite>)"
        )
    return list(_cases(root, suite_file=""))


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def _cases(element: ET.Element, *, suite_file: str) -> Iterator[TestCase]:
    tag = _local(element.tag)
    if tag == "testcase":
        yield _case(element, suite_file)
        return
    if tag in ("testsuites", "testsuite"):
        suite_file = element.get("file", suite_file) or suite_file
        for child in element:
            yield from _cases(child, suite_file=suite_file)


def _case(element: ET.Element, suite_file: str) -> TestCase:
    status, message, text = "passed", "", ""
    for child in element:
        kind = _local(child.tag)
        if kind in ("failure", "error"):
            status = "failed" if kind == "failure" else "errored"
            message = child.get("message") or child.get("type") or ""
            text = (child.text or "").strip()
            break  # the first failure or error decides
        if kind == "skipped" and status == "passed":
            status = "skipped"
            message = child.get("message") or ""
            text = (child.text or "").strip()
    return TestCase(
        name=element.get("name") or "",
        classname=element.get("classname") or element.get("class") or "",
        status=status,
        duration=_seconds(element.get("time")),
        message=message[:_MAX_TEXT],
        text=text[:_MAX_TEXT],
        file=element.get("file") or suite_file,
    )


def _seconds(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        seconds = float(value.replace(",", ""))  # some tools write "1,234.5"
    except ValueError:
        return 0.0
    return seconds if seconds >= 0 and seconds == seconds else 0.0  # no NaN


def mask_cases(cases: list[TestCase], secrets: Sequence[str | bytes]) -> list[TestCase]:
    """``cases`` with every secret replaced by ``***`` in each of their texts.

    The same rule as the step's log (:class:`~sauci.core.logsink.LogSink`):
    secrets shorter than MIN_SECRET_LENGTH are left alone, and of two
    starting at the same place the longer is masked.
    """
    from sauci.core.logsink import MASK, MIN_SECRET_LENGTH

    values = {s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in secrets}
    values = {v for v in values if len(v.encode()) >= MIN_SECRET_LENGTH}
    if not values or not cases:
        return cases
    pattern = re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))
    mask = MASK.decode()
    fields = ("name", "classname", "message", "text", "file")
    out = []
    for case in cases:
        changes: dict[str, Any] = {}
        for field in fields:
            text = getattr(case, field)
            masked = pattern.sub(mask, text)
            if len(text) == _MAX_TEXT:  # cut there: maybe in the middle of a secret
                masked = _mask_cut_end(masked, values, mask)
            if masked != text:
                changes[field] = masked
        out.append(attrs.evolve(case, **changes) if changes else case)
    return out


def _mask_cut_end(text: str, secrets: set[str], mask: str) -> str:
    """``text`` with an end that begins a secret (3 characters of it or more) masked."""
    for start in range(max(0, len(text) - max(map(len, secrets)) + 1), len(text) - 2):
        rest = text[start:]
        if any(len(s) > len(rest) and s.startswith(rest) for s in secrets):
            return text[:start] + mask
    return text


def collect_junit(
    workspace: Path | str, globs: Iterable[str], *, secrets: Sequence[str | bytes] = ()
) -> list[TestCase]:
    """The test cases of every report matching ``globs`` (relative to ``workspace``),
    with ``secrets`` masked in their texts (:func:`mask_cases`).

    Never raises: a broken report becomes one errored TestCase named after
    the file with the problem as its message, and so do a pattern outside
    the workspace and a symlink (neither is read).
    """
    cases: list[TestCase] = []
    patterns = []
    for pattern in globs:
        parts = split_glob(pattern) if pattern else None
        if parts is None:
            rel = pattern or "<empty pattern>"
            cases.append(
                _broken(rel, f"{rel}: a report path must be relative, inside the workspace")
            )
        else:
            patterns.append(parts)
    # Reports are read as the server, from files the build's steps wrote:
    # never through a symlink (sauci.core.workspace_files).
    for match in matching_files(Path(workspace), patterns, directories=False, links=True):
        rel = match.relative
        if match.is_link:
            log.warning("junit_symlink_refused", path=rel)
            cases.append(
                _broken(rel, f"{rel}: a symbolic link; reports are read only from regular files")
            )
            continue
        try:
            with match.open() as fh:
                data = fh.read(MAX_REPORT_SIZE + 1)
        except OSError as exc:
            cases.append(_broken(rel, f"{rel}: cannot read the JUnit report: {exc}"))
            continue
        try:
            cases.extend(parse_junit(data, name=rel))
        except ConfigError as exc:
            cases.append(_broken(rel, str(exc)))
        except Exception as exc:  # never let a report break the build
            log.warning("junit_parse_failed", path=rel, error=repr(exc))
            cases.append(_broken(rel, f"{rel}: cannot parse the JUnit report: {exc!r}"))
    return mask_cases(cases, secrets)


def _broken(rel: str, message: str) -> TestCase:
    return TestCase(name=rel, classname="junit", status="errored", message=message, file=rel)
