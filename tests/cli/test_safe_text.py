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


def test_sauci_status_shows_a_pushed_branch_and_reason_escaped(tmp_path, monkeypatch, capsys):
    """A queued build's reason can quote a pushed name (a workflow's concurrency
    group, which YAML's "\\e" makes an escape) and a branch can hold bidi
    controls: `sauci status` printed both raw to the operator's terminal."""
    from sauci.cli import main
    from sauci.core.models import BuildRequest
    from sauci.storage import open_store

    data = tmp_path / "data"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(data))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    data.mkdir(mode=0o700)
    store = open_store(f"sqlite:///{data / 'sauci.db'}")
    build = store.create_build(
        BuildRequest(repo="/srv/app.git", ref="refs/heads/x\u202egpj.exe", sha="a" * 40)
    )
    store.update_build(
        build.id, reason="waiting for build #1 (concurrency group '\x1b]52;c;eA==\x07')"
    )
    store.close()
    assert 0 == main(["status", "--color", "never"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out, out
    assert "x\\u202egpj.exe" in out and "\\x1b]52;c;eA==\\x07" in out
