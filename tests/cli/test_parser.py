"""The command table: only the chosen command's parser is built, and it reads a
command line exactly as the full parser does."""

from __future__ import annotations

import importlib

import pytest

from sauci.cli import _COMMANDS, _chosen, build_parser, main

LINES = [
    ["run"],
    [
        "run",
        "repo",
        "--dirty",
        "--commit",
        "v1",
        "-j",
        "2",
        "--fail-fast",
        "-q",
        "--file",
        "x.yml",
        "--event",
        "push",
    ],
    ["run", "--keep-workspace", "--data-dir", "/d", "--store", "memory://", "--color", "never"],
    ["validate", "path/.sauci.yml", "--log-level", "debug", "--log-format", "json"],
    ["init", "--force"],
    ["demo", "--dir", "/tmp/x"],
    ["builds", "--repo", "r", "--branch", "main", "--status", "failed", "--limit", "5"],
    ["show", "3"],
    ["logs", "3", "step", "-f"],
    ["serve", "--repo", "a", "--repo", "b", "--no-ui", "--max-builds", "3"],
    ["repo", "add", "/r", "--hook", "none"],
    ["repo", "remove", "r-1234"],
    ["repo", "list"],
    ["trigger", "/r", "--ref", "main", "--param", "a=b"],
    ["rerun", "4", "--failed"],
    ["cancel", "4"],
    ["status"],
    ["store", "copy", "--from", "memory://", "--to", "memory://"],
    ["bench", "stores", "--url", "memory://", "--builds", "10"],
]


@pytest.mark.parametrize("argv", LINES, ids=lambda argv: " ".join(argv[:2]))
def test_the_one_command_parser_reads_lines_as_the_full_one(argv):
    assert argv[0] == _chosen(argv)
    expected = vars(build_parser().parse_args(argv))
    assert expected == vars(build_parser(argv[0]).parse_args(argv))


def test_every_command_has_its_function():
    for name, command in _COMMANDS.items():
        module = importlib.import_module(f"sauci.cli.{command.module}")
        assert callable(getattr(module, f"cmd_{name}")), name


def test_top_level_options_and_unknown_words_get_the_full_parser():
    assert _chosen(["--version"]) is None
    assert _chosen(["--help"]) is None
    assert _chosen([]) is None
    assert _chosen(["runn"]) is None


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert 0 == exit_info.value.code
    out = capsys.readouterr().out
    assert all(f"    {name} " in out for name in _COMMANDS)


def test_an_unknown_command_names_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["runn"])
    assert 2 == exit_info.value.code
    err = capsys.readouterr().err
    assert "invalid choice: 'runn'" in err and "'validate'" in err
