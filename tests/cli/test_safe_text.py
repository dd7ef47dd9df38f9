"""Text from a repository cannot drive the reader's terminal."""

from __future__ import annotations

from sauci.cli._safe import printable


def test_control_characters_become_visible_escapes():
    title = "\x1b]0;owned\x07"
    assert "\\x1b]0;owned\\x07 \\x1b[2J\\x9b fix\\x0d" == printable(f"{title} \x1b[2J\x9b fix\r")


def test_bidi_controls_are_shown_not_obeyed():
    assert "admin\\u202e\\u2066 x" == printable("admin\u202e\u2066 x")


def test_ordinary_text_and_tabs_are_kept():
    text = "fix: café ünïcode 日本 \t ok"
    assert text == printable(text)
