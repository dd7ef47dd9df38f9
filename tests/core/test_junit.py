"""JUnit reports: the usual shapes, malicious XML, and collecting from a workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.core.junit import _MAX_TEXT, collect_junit, mask_cases, parse_junit
from sauci.core.models import TestCase
from sauci.exceptions import ConfigError

PYTEST_REPORT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="1.5">
    <testcase classname="tests.test_a" name="test_ok" time="0.010" file="tests/test_a.py"/>
    <testcase classname="tests.test_a" name="test_bad" time="0.5">
      <failure message="assert 1 == 2">def test_bad():
&gt;       assert 1 == 2
E       assert 1 == 2</failure>
    </testcase>
    <testcase classname="tests.test_a" name="test_broken" time="0.001">
      <error message="fixture 'db' not found">E   fixture 'db' not found</error>
    </testcase>
    <testcase classname="tests.test_a" name="test_later" time="0">
      <skipped type="pytest.skip" message="not yet">tests/test_a.py:20: not yet</skipped>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_parses_a_pytest_report() -> None:
    expected = [
        TestCase(
            name="test_ok",
            classname="tests.test_a",
            status="passed",
            duration=0.01,
            file="tests/test_a.py",
        ),
        TestCase(
            name="test_bad",
            classname="tests.test_a",
            status="failed",
            duration=0.5,
            message="assert 1 == 2",
            text="def test_bad():\n>       assert 1 == 2\nE       assert 1 == 2",
        ),
        TestCase(
            name="test_broken",
            classname="tests.test_a",
            status="errored",
            duration=0.001,
            message="fixture 'db' not found",
            text="E   fixture 'db' not found",
        ),
        TestCase(
            name="test_later",
            classname="tests.test_a",
            status="skipped",
            message="not yet",
            text="tests/test_a.py:20: not yet",
        ),
    ]
    assert expected == parse_junit(PYTEST_REPORT)


def test_parses_a_path_and_a_single_testsuite_root(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_bytes(
        b'<testsuite name="s"><testcase name="t" classname="c" time="2"/></testsuite>'
    )
    assert [TestCase(name="t", classname="c", duration=2.0)] == parse_junit(report)
    assert parse_junit(report) == parse_junit(str(report))


def test_nested_suites_and_file_inherited_from_the_suite() -> None:
    xml = b"""<testsuites>
      <testsuite name="outer" file="outer.py">
        <testcase name="a"/>
        <testsuite name="inner" file="inner.py">
          <testcase name="b"/>
          <testcase name="c" file="own.py"><failure>boom</failure></testcase>
        </testsuite>
      </testsuite>
    </testsuites>"""
    cases = parse_junit(xml)
    assert [
        ("a", "outer.py", "passed"),
        ("b", "inner.py", "passed"),
        ("c", "own.py", "failed"),
    ] == [(c.name, c.file, c.status) for c in cases]
    assert "boom" == cases[2].text


@pytest.mark.parametrize(
    ("time", "duration"),
    [
        ("1,234.5", 1234.5),
        ("", 0.0),
        ("abc", 0.0),
        ("-1", 0.0),
        ("nan", 0.0),
        # A report's "time" is the pusher's: 1e400 is infinity, which made every
        # page showing the case's duration a 500 (int(inf) raises); 1e300 added
        # up to infinity over a few cases. A case longer than a year is no case.
        ("1e400", 0.0),
        ("inf", 0.0),
        ("1e300", 0.0),
        ("31536000", 31536000.0),
    ],
)
def test_odd_time_attributes(time: str, duration: float) -> None:
    xml = f'<testsuite><testcase name="t" time="{time}"/></testsuite>'.encode()
    assert duration == parse_junit(xml)[0].duration


def test_failure_type_is_the_message_when_there_is_no_message() -> None:
    xml = b'<testsuite><testcase name="t"><failure type="AssertionError"/></testcase></testsuite>'
    assert ("failed", "AssertionError") == (parse_junit(xml)[0].status, parse_junit(xml)[0].message)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuite><testcase name="&lol9;"/></testsuite>
"""


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(ConfigError, match="a DTD, XML entities or external references"):
        parse_junit(BILLION_LAUGHS, name="evil.xml")


def test_external_entity_is_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xml = (
        f'<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        '<testsuite><testcase name="&xxe;"/></testsuite>'
    ).encode()
    with pytest.raises(ConfigError) as info:
        parse_junit(xml)
    assert "TOP-SECRET-CONTENT" not in str(info.value)


def test_external_dtd_is_never_read(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "TOP-SECRET-CONTENT">')
    xml = (
        f'<?xml version="1.0"?>\n<!DOCTYPE testsuite SYSTEM "file://{dtd}">\n'
        '<testsuite><testcase name="&leak;"/></testsuite>'
    ).encode()
    with pytest.raises(ConfigError) as info:
        parse_junit(xml)
    assert "TOP-SECRET-CONTENT" not in str(info.value)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<testsuite><testcase name='t'>", "not a well-formed XML file"),
        (b"", "not a well-formed XML file"),
        (b"<html><body/></html>", "not a JUnit report (the root element is <html>"),
    ],
)
def test_broken_reports_raise_config_error(xml: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_junit(xml, name="r.xml")


# -- collect_junit ----------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_collect_matches_globs_in_the_workspace(tmp_path: Path) -> None:
    _write(tmp_path / "reports" / "a.xml", b'<testsuite><testcase name="a"/></testsuite>')
    _write(tmp_path / "reports" / "sub" / "b.xml", b'<testsuite><testcase name="b"/></testsuite>')
    _write(tmp_path / "other.xml", b'<testsuite><testcase name="other"/></testsuite>')
    cases = collect_junit(tmp_path, ["reports/**/*.xml", "reports/a.xml"])
    assert ["a", "b"] == [c.name for c in cases]  # each file once


def test_collect_turns_a_broken_file_into_one_errored_case(tmp_path: Path) -> None:
    _write(tmp_path / "reports" / "bad.xml", b"<testsuite><testcase")
    _write(tmp_path / "reports" / "evil.xml", BILLION_LAUGHS)
    _write(tmp_path / "reports" / "good.xml", b'<testsuite><testcase name="ok"/></testsuite>')
    cases = collect_junit(tmp_path, ["reports/*.xml"])
    assert [
        ("reports/bad.xml", "errored"),
        ("reports/evil.xml", "errored"),
        ("ok", "passed"),
    ] == [(c.name, c.status) for c in cases]
    assert cases[0].message.startswith("reports/bad.xml: not a well-formed XML file")
    assert "entities" in cases[1].message
    assert "reports/bad.xml" == cases[0].file


def test_collect_refuses_paths_outside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    outside = tmp_path / "outside.xml"
    _write(outside, b'<testsuite><testcase name="leaked"/></testsuite>')
    _write(workspace / "inside.xml", b'<testsuite><testcase name="inside"/></testsuite>')
    (workspace / "link.xml").symlink_to(outside)
    cases = collect_junit(workspace, ["*.xml", "../outside.xml", str(outside)])
    names = [c.name for c in cases]
    assert "leaked" not in names
    assert "inside" in names
    refused = {c.name: c.message for c in cases if c.status == "errored"}
    assert {"link.xml", "../outside.xml", str(outside)} == set(refused)
    assert "a symbolic link; reports are read only from regular files" in refused["link.xml"]
    assert "inside the workspace" in refused["../outside.xml"]


def test_collect_with_no_match_is_empty(tmp_path: Path) -> None:
    assert [] == collect_junit(tmp_path, ["reports/*.xml"])


SECRET_REPORT = b"""<testsuite name="s" file="suite-tok3n-abc.py">
  <testcase classname="deploy.tok3n-abc" name="test_login[tok3n-abc]">
    <failure message="401 for token tok3n-abc">sent Authorization: tok3n-abc
and tok3n-abc again</failure>
  </testcase>
  <testcase classname="ok" name="test_fine"/>
</testsuite>
"""


def test_collect_masks_secrets_in_every_text_of_a_case(tmp_path: Path) -> None:
    """Test names, class names, messages, failure text and file names are as
    untrusted as the log: the step's secrets are masked in all of them."""
    (tmp_path / "r.xml").write_bytes(SECRET_REPORT)
    cases = collect_junit(tmp_path, ["r.xml"], secrets=["tok3n-abc", "xy"])
    assert [
        TestCase(
            name="test_login[***]",
            classname="deploy.***",
            status="failed",
            message="401 for token ***",
            text="sent Authorization: ***\nand *** again",
            file="suite-***.py",
        ),
        TestCase(name="test_fine", classname="ok", file="suite-***.py"),
    ] == cases


def test_collect_without_secrets_keeps_the_texts(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_bytes(SECRET_REPORT)
    assert "test_login[tok3n-abc]" == collect_junit(tmp_path, ["r.xml"])[0].name


def test_a_secret_cut_by_the_text_cap_is_masked() -> None:
    """A failure text is cut at 64 KiB: a secret's beginning left at the cut is masked."""
    secret = "s3cr3t-value"
    long_text = "x" * (_MAX_TEXT - 4) + secret[:4]
    case = TestCase(name="t", status="failed", text=long_text, message="m s3cr3t-value")
    (masked,) = mask_cases([case], [secret])
    assert "x" * (_MAX_TEXT - 4) + "***" == masked.text
    assert "m ***" == masked.message


def test_the_longer_of_two_secrets_starting_together_is_masked() -> None:
    case = TestCase(name="abc abcdef")
    assert ["*** ***"] == [c.name for c in mask_cases([case], ["abc", "abcdef"])]


# -- hostile: a step's reports are capped together ---------------------------


def test_a_report_of_millions_of_cases_is_cut_at_the_step_limit(tmp_path):
    """Hostile: 64 MiB of ``<testcase/>`` is 5.6 million cases (a gigabyte of
    the server's memory, as many rows), and a glob may match many such files.
    One step records at most MAX_CASES, then one errored case saying so."""
    from sauci.core.junit import MAX_CASES

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.xml").write_bytes(
        b"<testsuite>" + b"<testcase/>" * (MAX_CASES - 2) + b"</testsuite>"
    )
    (tmp_path / "r" / "b.xml").write_bytes(b"<testsuite>" + b"<testcase/>" * 10 + b"</testsuite>")
    (tmp_path / "r" / "c.xml").write_bytes(b"<testsuite><testcase/></testsuite>")
    cases = collect_junit(tmp_path, ["r/*.xml"])
    assert MAX_CASES + 1 == len(cases)
    last = cases[-1]
    assert ("r/b.xml", "errored") == (last.name, last.status)
    assert f"more than {MAX_CASES} test cases" in last.message
    assert all(c.status == "passed" for c in cases[:-1])


def test_broken_reports_count_towards_the_step_limit(tmp_path, monkeypatch):
    import sauci.core.junit as junit

    monkeypatch.setattr(junit, "MAX_CASES", 5)
    for i in range(10):
        (tmp_path / f"{i}.xml").write_text("not xml")
    cases = collect_junit(tmp_path, ["*.xml"])
    assert 6 == len(cases)
    assert "more than 5 test cases" in cases[-1].message


def test_reports_past_the_steps_bytes_are_not_read(tmp_path, monkeypatch):
    import sauci.core.junit as junit

    monkeypatch.setattr(junit, "MAX_STEP_REPORTS_SIZE", 100)
    report = b"<testsuite>" + b"<testcase/>" * 10 + b"</testsuite>"  # 133 bytes
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.xml").write_bytes(report)
    cases = collect_junit(tmp_path, ["*.xml"])
    assert 11 == len(cases)
    assert ("b.xml", "errored") == (cases[-1].name, cases[-1].status)
    assert "not read; this step's reports passed" in cases[-1].message


def test_a_report_is_read_as_a_stream_and_nested_suites_keep_their_file():
    data = (
        b'<testsuites><testsuite file="a.py"><testcase name="x"/>'
        b'<testsuite><testcase name="y"/><properties><testcase name="no"/></properties>'
        b'</testsuite><testcase name="z" file="own.py"><testcase name="inner"/></testcase>'
        b"</testsuite><testcase name='top'/></testsuites>"
    )
    cases = parse_junit(data)
    assert [("x", "a.py"), ("y", "a.py"), ("z", "own.py"), ("top", "")] == [
        (c.name, c.file) for c in cases
    ]
    assert 3 == len(parse_junit(data, max_cases=2))
