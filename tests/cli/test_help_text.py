"""Every argument of every ``sauci`` command says what it is in ``--help``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

from sauci.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, path: str = "sauci"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def _missing_help(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help is None or not str(action.help).strip():
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def test_the_walk_sees_every_command_and_nested_action():
    """The walk below is not vacuous: it reaches nested sub-commands and positionals."""
    seen = {path: parser for path, parser in _parsers(build_parser())}
    assert {"sauci rerun", "sauci repo add", "sauci store copy", "sauci bench stores"} <= set(seen)
    positionals = [a.dest for a in seen["sauci rerun"]._actions if not a.option_strings]
    assert "build" in positionals


def test_every_argument_and_option_has_help():
    bare = {
        path: missing
        for path, parser in _parsers(build_parser())
        if (missing := _missing_help(parser))
    }
    assert {} == bare


def test_a_bare_parser_would_be_caught():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", type=int)
    parser.add_argument("--limit", help="")
    assert ["build", "--limit"] == _missing_help(parser)


def test_rerun_help_says_what_build_is():
    """The real command line, as a user sees it."""
    out = subprocess.run(
        [sys.executable, "-m", "sauci", "rerun", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    positional = out.split("positional arguments:", 1)[1].split("options:", 1)[0]
    line = next(line for line in positional.splitlines() if line.strip().startswith("build"))
    assert line.strip() != "build" and "id" in line
