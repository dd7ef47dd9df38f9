"""Read JUnit XML reports into TestCase results, safely.

Reports come from the build, so they are untrusted: they are parsed with
defusedxml (no DTD, no entity expansion, no external files, no network),
capped in size, and only read from inside the workspace. A step's reports
together are capped too (:data:`MAX_STEP_REPORTS_SIZE`, :data:`MAX_CASES`):
64 MiB of ``<testcase/>`` is 5.6 million cases, a gigabyte of the server's
memory and as many rows in the store, and a glob can match many such files.
They are read as a stream, so a report is never held as a tree past the
cases kept. The secrets the step received are masked in every text of
every case before it is stored.
"""

from __future__ import annotations

import io
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

__all__ = [
    "MAX_CASES",
    "MAX_REPORT_SIZE",
    "MAX_STEP_REPORTS_SIZE",
    "collect_junit",
    "mask_cases",
    "parse_junit",
]

log = get_logger(__name__)

MAX_REPORT_SIZE = 64 * 1024 * 1024
MAX_STEP_REPORTS_SIZE = 256 * 1024 * 1024  # all the reports of one step together
MAX_CASES = 100_000  # test cases recorded of one step, all its reports together
_MAX_TEXT = 64 * 1024  # of one failure's text kept per test case
_MAX_SECONDS = 365 * 24 * 3600.0  # a test case's time; a longer one is not a time


def parse_junit(
    source: Path | str | bytes, *, name: str | None = None, max_cases: int | None = None
) -> list[TestCase]:
    """The test cases of one JUnit XML report (a path, or its bytes).

    Understands ``<testsuites>`` and ``<testsuite>`` roots, nested suites,
    ``<testcase>`` with ``<failure>``, ``<error>`` and ``<skipped>``, and the
    ``time``, ``classname`` and ``file`` attributes (a case without ``file``
    takes its suite's). Raises ConfigError with a clear message for a
    report that is not well-formed, too large, or has a DTD, entities or
    external references (which are never expanded or fetched). With
    ``max_cases``, reading stops after ``max_cases + 1`` cases: more than
    ``max_cases`` returned means the report has more.
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
        events = DET.iterparse(
            io.BytesIO(data),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        return _stream_cases(events, label, max_cases)
    except DefusedXmlException as exc:
        raise ConfigError(
            f"{label}: the JUnit report uses a DTD, XML entities or external references, "
            f"which are refused for safety ({type(exc).__name__})"
        ) from exc
    except ET.ParseError as exc:
        raise ConfigError(f"{label}: not a well-formed XML file: {exc}") from exc


_SUITES = ("testsuites", "testsuite")


def _stream_cases(
    events: Iterator[tuple[str, Any]], label: str, max_cases: int | None
) -> list[TestCase]:
    """The cases of a report's parse events: each ``<testcase>`` whose
    ancestors are all suites, with the ``file`` of its nearest suite that has
    one. A case's element is dropped from its suite once read, so the tree
    never holds more than one case."""
    cases: list[TestCase] = []
    # (element, its suite file, whether it and all its ancestors are suites)
    stack: list[tuple[ET.Element, str, bool]] = []
    for event, element in events:
        if event == "start":
            tag = _local(element.tag)
            if not stack and tag not in (*_SUITES, "testcase"):
                raise ConfigError(
                    f"{label}: not a JUnit report (the root element is <{tag}>, "
                    "expected <testsuites> or <testsuite>)"
                )
            parent_file, parent_suites = (stack[-1][1], stack[-1][2]) if stack else ("", True)
            suite = parent_suites and tag in _SUITES
            file = (element.get("file", parent_file) or parent_file) if suite else parent_file
            stack.append((element, file, suite))
            continue
        _, file, _ = stack.pop()
        parent_suites = stack[-1][2] if stack else True
        if parent_suites and _local(element.tag) == "testcase":
            cases.append(_case(element, file))
            if max_cases is not None and len(cases) > max_cases:
                break
            if stack:
                del stack[-1][0][:]  # read: the suite need not keep it
    return cases


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


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
    # No NaN, no infinity, nothing longer than a year: the report is the
    # pusher's, and the pages add durations up and format them (int(inf) raises).
    return seconds if 0 <= seconds <= _MAX_SECONDS else 0.0


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
    the workspace and a symlink (neither is read). Past
    :data:`MAX_STEP_REPORTS_SIZE` bytes read or :data:`MAX_CASES` cases,
    one errored case says so and nothing more is read.
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
    left = MAX_STEP_REPORTS_SIZE
    for match in matching_files(Path(workspace), patterns, directories=False, links=True):
        # Names are bytes: one that is not UTF-8 is shown with \xff escapes in
        # the cases that name it (no store keeps a lone surrogate).
        rel = match.relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if left <= 0:
            cases.append(
                _broken(
                    rel,
                    f"{rel} and the reports after it: not read; this step's reports "
                    f"passed {MAX_STEP_REPORTS_SIZE >> 20} MiB together",
                )
            )
            break
        if len(cases) >= MAX_CASES:  # errored cases of broken reports count too
            cases.append(_too_many(rel))
            break
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
        left -= len(data)
        try:
            room = MAX_CASES - len(cases)
            found = parse_junit(data, name=rel, max_cases=room)
        except ConfigError as exc:
            cases.append(_broken(rel, str(exc)))
        except Exception as exc:  # never let a report break the build
            log.warning("junit_parse_failed", path=rel, error=repr(exc))
            cases.append(_broken(rel, f"{rel}: cannot parse the JUnit report: {exc!r}"))
        else:
            if len(found) > room:
                cases.extend(found[:room])
                cases.append(_too_many(rel))
                break
            cases.extend(found)
    return mask_cases(cases, secrets)


def _too_many(rel: str) -> TestCase:
    return _broken(
        rel,
        f"{rel}: this step's reports have more than {MAX_CASES} test cases; "
        "the rest were not recorded",
    )


def _broken(rel: str, message: str) -> TestCase:
    return TestCase(name=rel, classname="junit", status="errored", message=message, file=rel)
