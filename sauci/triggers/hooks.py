"""Git hooks that record pushes (post-receive) or commits (post-commit) in the spool.

The hooks are POSIX sh, not Python: a Python start-up with SauCI's imports
costs 100+ ms, and a push must get at most 50 ms slower. A hook writes one
spool file (mktemp in ``tmp/``, then mv into ``new/``) and exits 0 even when
that fails: a CI system must never block a push. A hook that was there before
is kept as ``<hook>.sauci-chained``, run first with the same input, and its
exit status is passed through.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Literal

from sauci.exceptions import ConfigError, SourceError, SourceUnavailableError
from sauci.source.gitcmd import run_git
from sauci.triggers.spool import SPOOL_HEADER, ensure_spool

__all__ = [
    "CHAINED_SUFFIX",
    "HOOK_MARKER",
    "HookKind",
    "hook_installed",
    "install_hook",
    "remove_hook",
]

HookKind = Literal["receive", "commit"]

HOOK_MARKER = "# installed by sauci"
CHAINED_SUFFIX = ".sauci-chained"
_HOOK_NAMES = {"receive": "post-receive", "commit": "post-commit"}

# Shared by both hooks: settings, the chained hook, and the spool writer.
# `write_spool` reads "old new ref" lines on stdin; every step that can fail
# is checked, and a failure only warns. `date +%s%N` without GNU date prints
# a literal N, which gets nine zeros so that names still sort by time.
_PRELUDE = """\
#!/bin/sh
{marker}
# SauCI's {name} hook: records {what} in SauCI's spool, which
# `sauci serve` builds. It never blocks git: when the spool cannot be written
# it warns and exits 0 (or with the status of the hook it chains:
# {name}{chained_suffix}, run first). Remove it with sauci.triggers.remove_hook.
spool={spool}
repo={repo}
chained="$0{chained_suffix}"
status=0

sauci_warn() {{
	echo "sauci: warning: $*; SauCI will not build this {noun}" >&2
}}

write_spool() {{
	pusher=${{GL_USERNAME:-${{GL_USER:-${{USER:-${{LOGNAME:-}}}}}}}}
	tmp=$(mktemp "$spool/tmp/sauci.XXXXXX" 2>/dev/null) || {{
		sauci_warn "cannot create a file in $spool/tmp"
		return
	}}
	ok=1
	{{
		printf '{header}\\nrepo %s\\nevent push\\npusher %s\\n' "$repo" "$pusher" || ok=
		while read -r old new ref; do
			[ -n "$ref" ] || continue
			printf 'ref %s %s %s\\n' "$old" "$new" "$ref" || ok=
		done
	}} >"$tmp" || ok=
	ts=$(date +%s%N)
	case $ts in *N) ts=${{ts%N}}000000000 ;; esac
	if [ -z "$ok" ] || ! mv "$tmp" "$spool/new/$ts.$$.${{tmp##*/}}"; then
		rm -f "$tmp"
		sauci_warn "cannot write to $spool"
		return
	fi
	# Wake a server reading the spool (sauci.triggers.wake): never blocks, and
	# does nothing when no server listens; the server's safety round finds the
	# file anyway.
	if [ -p "$spool/wake" ]; then
		printf x 2>/dev/null | dd of="$spool/wake" oflag=nonblock status=none 2>/dev/null || :
	fi
}}
"""

# post-receive: stdin is consumed by the chained hook, so it is first saved
# to a temp file (a shell variable would grow quadratically on a mirror push
# of thousands of refs) and both read that.
_RECEIVE = """\
if [ -x "$chained" ]; then
	if input=$(mktemp 2>/dev/null) && cat >"$input"; then
		"$chained" "$@" <"$input"
		status=$?
		exec <"$input"
		rm -f "$input"
	else
		[ -n "$input" ] && rm -f "$input"
		sauci_warn "cannot save the hook input to share it with $chained"
		"$chained" "$@"
		exit $?
	fi
fi
write_spool
exit $status
"""

# post-commit: a commit on a detached HEAD (rebase, bisect) is not on any
# branch, so there is nothing to build. rev-list gives the sha and the first
# parent in one process; a root commit has none (zeros).
_COMMIT = """\
if [ -x "$chained" ]; then
	"$chained" "$@"
	status=$?
fi
ref=$(git symbolic-ref -q HEAD) || exit $status
set -- $(git rev-list --parents -n 1 HEAD 2>/dev/null)
if [ -z "$1" ]; then
	sauci_warn "cannot read HEAD"
	exit $status
fi
printf '%s %s %s\\n' "${2:-0000000000000000000000000000000000000000}" "$1" "$ref" | write_spool
exit $status
"""


def _repo_layout(repo: Path | str) -> tuple[bool, Path, Path]:
    """(bare?, the repository's path as SauCI names it, its hooks directory).

    One git call for a bare repository, two for a work tree (whose top level
    ``--show-toplevel`` gives, which a bare repository refuses): ``sauci
    serve`` makes them for every repository at each start."""
    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise SourceUnavailableError(f"{repo} does not exist or is not a directory")
    try:
        answer = run_git(
            "rev-parse",
            "--is-bare-repository",
            "--absolute-git-dir",
            "--git-path",
            "hooks",
            cwd=repo,
        ).split("\n")
    except SourceError as exc:
        raise SourceUnavailableError(f"{repo} is not a git repository") from exc
    bare, git_dir, hooks_path = answer[0] == "true", answer[1], answer[2]
    if bare:
        root = Path(git_dir)
    else:
        root = Path(run_git("rev-parse", "--show-toplevel", cwd=repo).strip())
    # --git-path honours core.hooksPath; a relative answer is relative to cwd.
    hooks = Path(os.path.abspath(repo)) / hooks_path
    return bare, root.resolve(), Path(os.path.normpath(hooks))


def _hook_path(repo: Path | str, kind: HookKind | None) -> tuple[HookKind, Path, Path]:
    """(the kind, the repository's path as SauCI names it, the hook file)."""
    if kind is not None and kind not in _HOOK_NAMES:
        raise ConfigError(f"hook kind must be 'receive', 'commit' or None, not {kind!r}")
    bare, root, hooks = _repo_layout(repo)
    if kind is None:
        kind = "receive" if bare else "commit"
    return kind, root, hooks / _HOOK_NAMES[kind]


def _is_ours(hook: Path) -> bool:
    try:
        with open(hook, encoding="utf-8", errors="replace") as f:
            head = [f.readline() for _ in range(3)]
    except OSError:
        return False
    return any(line.rstrip("\n") == HOOK_MARKER for line in head)


def hook_script(kind: HookKind, *, spool_dir: Path | str, repo: Path | str) -> str:
    """The text of SauCI's hook of ``kind`` for one repository and spool."""
    name = _HOOK_NAMES[kind]
    prelude = _PRELUDE.format(
        marker=HOOK_MARKER,
        name=name,
        what="each pushed ref" if kind == "receive" else "each commit on a branch",
        noun="push" if kind == "receive" else "commit",
        chained_suffix=CHAINED_SUFFIX,
        spool=shlex.quote(str(spool_dir)),
        repo=shlex.quote(str(repo)),
        header=SPOOL_HEADER,
    )
    return prelude + "\n" + (_RECEIVE if kind == "receive" else _COMMIT)


def install_hook(repo: Path | str, spool_dir: Path | str, kind: HookKind | None = None) -> Path:
    """Install SauCI's hook in ``repo`` so that each push (or commit) lands in the spool.

    ``kind`` None picks "receive" (post-receive) for a bare repository and
    "commit" (post-commit) for a work tree. An existing hook is chained, never
    overwritten; installing again only rewrites SauCI's own hook. Returns the
    hook's path (in ``core.hooksPath`` when that is set).
    """
    kind, root, hook = _hook_path(repo, kind)
    spool = Path(spool_dir).expanduser().resolve()
    if "\n" in str(root) or "\r" in str(root):
        raise ConfigError(f"SauCI cannot record pushes to a path with a line break: {root!r}")
    ensure_spool(spool)
    hook.parent.mkdir(parents=True, exist_ok=True)
    tmp = hook.with_name(f".{hook.name}.sauci-tmp")
    tmp.write_text(hook_script(kind, spool_dir=spool, repo=root), encoding="utf-8")
    tmp.chmod(0o755)
    chained = hook.with_name(hook.name + CHAINED_SUFFIX)
    if (hook.exists() or hook.is_symlink()) and not _is_ours(hook):
        if chained.exists() or chained.is_symlink():
            tmp.unlink()
            raise SourceError(
                f"{hook} is not SauCI's and {chained} already exists; "
                "move one of them away and install again"
            )
        # A second name for the original, then one atomic replace: a push
        # arriving meanwhile always finds a hook.
        try:
            os.link(hook, chained, follow_symlinks=False)
        except OSError:
            os.rename(hook, chained)
    os.replace(tmp, hook)
    return hook


def hook_installed(repo: Path | str, kind: HookKind | None = None) -> bool:
    """Whether SauCI's hook of ``kind`` is installed in ``repo``.

    ``kind`` None asks about either hook, so that a repository whose pushes
    or commits already reach the spool is not also polled (that would build
    each change twice). False for a path that is not a repository.
    """
    if kind is not None and kind not in _HOOK_NAMES:
        raise ConfigError(f"hook kind must be 'receive', 'commit' or None, not {kind!r}")
    try:
        _bare, _root, hooks = _repo_layout(repo)
    except SourceError:
        return False
    kinds = [kind] if kind is not None else list(_HOOK_NAMES)
    return any(_is_ours(hooks / _HOOK_NAMES[k]) for k in kinds)


def remove_hook(repo: Path | str, kind: HookKind | None = None) -> bool:
    """Take SauCI's hook out of ``repo`` and put back the hook it chained, if any.

    Returns False when there was no SauCI hook to remove; a hook that is not
    SauCI's is left alone.
    """
    _kind, _root, hook = _hook_path(repo, kind)
    chained = hook.with_name(hook.name + CHAINED_SUFFIX)
    present = hook.exists() or hook.is_symlink()
    if present and not _is_ours(hook):
        return False
    if chained.exists() or chained.is_symlink():
        os.replace(chained, hook)  # atomic: the original is back in one step
        return True
    if present:
        hook.unlink()
    return present
