"""The spool: a durable, maildir-style queue of pushes between git hooks and ``sauci serve``.

A hook must be cheap and must not lose a push, so it does not talk to the
server: it writes one small file into ``<spool>/tmp/`` and renames it into
``<spool>/new/``, where the server (at start and then as it runs) finds it.
A rename is atomic, so the server never sees half a file. The format is plain
lines that a POSIX shell can write without Python or JSON escaping::

    sauci-spool 1
    repo /srv/git/project.git
    event push
    pusher alice
    ref <old-sha> <new-sha> refs/heads/main
    ref <old-sha> <new-sha> refs/tags/v1.0

``ref`` lines are git's post-receive stdin lines with a ``ref`` prefix (git
ref names cannot hold spaces or newlines). Unknown keys are ignored, so
optional fields can be added without a version bump. Delivery is at least
once: a file is deleted (:func:`ack`) only after the server stored its builds.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.models import BuildRequest
from sauci.triggers._names import ref_problem, shown, utf8_text
from sauci.triggers.wake import poke

__all__ = [
    "PUSH_PRIORITY",
    "SPOOL_HEADER",
    "ack",
    "ensure_spool",
    "is_null_sha",
    "is_object_name",
    "read_requests",
    "write_request",
]

log = get_logger(__name__)

SPOOL_HEADER = "sauci-spool 1"
PUSH_PRIORITY = 10  # pushes run before manual (0) builds
STALE_TMP_SECONDS = 24 * 3600  # a tmp file this old belongs to a writer that died

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256 object names
_NAME_KEY = re.compile(r"(\d+)")


class SpoolFormatError(ValueError):
    """A spool file that cannot be read (it is moved to ``bad/``, never raised to callers)."""


def is_object_name(text: str) -> bool:
    """True for a full git object name: SHA-1 or SHA-256, lowercase hex."""
    return _SHA.fullmatch(text) is not None


def is_null_sha(sha: str) -> bool:
    """True for git's all-zeros object name, which marks a created or deleted ref."""
    return bool(sha) and set(sha) == {"0"}


def ensure_spool(spool_dir: Path | str) -> Path:
    """Create ``tmp/``, ``new/`` and ``bad/`` under ``spool_dir`` (hooks write into them)."""
    spool = Path(spool_dir)
    for sub in ("tmp", "new", "bad"):
        (spool / sub).mkdir(parents=True, exist_ok=True)
    return spool


def _check_line_value(name: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"spool {name} cannot contain a line break: {value!r}")


def write_request(spool_dir: Path | str, request: BuildRequest) -> Path:
    """Queue one push durably: write in ``tmp/``, fsync, rename into ``new/``.

    Carries repo, event, pusher, ref, old and new sha; the server reads
    author and message from the commit itself. Returns the file in ``new/``.
    """
    for name in ("repo", "event", "pusher"):
        _check_line_value(name, getattr(request, name))
    if not request.repo:
        raise ValueError("a spool request needs a repo")
    if not request.ref or any(c.isspace() for c in request.ref):
        raise ValueError(f"a spool request needs a ref without spaces, not {request.ref!r}")
    old = request.old_sha or "0" * 40
    text = (
        f"{SPOOL_HEADER}\nrepo {request.repo}\nevent {request.event}\n"
        f"pusher {request.pusher}\nref {old} {request.sha} {request.ref}\n"
    )
    spool = ensure_spool(spool_dir)
    fd, tmp = tempfile.mkstemp(dir=spool / "tmp", prefix="py.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8", "surrogateescape"))
            f.flush()
            os.fsync(f.fileno())
        # Same name shape as the shell hook's: time in ns, pid, unique part.
        final = spool / "new" / f"{time.time_ns()}.{os.getpid()}.{Path(tmp).name}"
        os.rename(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(spool / "new")
    poke(spool)  # a server reading this spool looks now
    return final


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not every file system allows it.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _order(path: Path) -> tuple[int, str]:
    match = _NAME_KEY.match(path.name)
    return (int(match.group(1)) if match else 2**63, path.name)


def parse_spool(text: str) -> list[BuildRequest]:
    """The build requests in one spool file's text, deletions left out.

    Raises SpoolFormatError naming the first problem.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0].rstrip("\r") != SPOOL_HEADER:
        raise SpoolFormatError(f"first line is not {SPOOL_HEADER!r}")
    fields: dict[str, str] = {}
    refs: list[tuple[str, str, str]] = []
    refused = 0
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        if not line:
            continue
        key, _, value = line.partition(" ")
        if key == "ref":
            parts = value.split()
            if len(parts) != 3:
                raise SpoolFormatError(f"line {number}: expected 'ref <old> <new> <refname>'")
            old, new, ref = parts
            for sha in (old, new):
                if not is_object_name(sha):
                    raise SpoolFormatError(f"line {number}: {sha!r} is not an object name")
            problem = ref_problem(ref)
            if problem is not None:
                # Left out, not the whole file: the push's other refs build,
                # and a store that refuses the name cannot stop the queue.
                log.warning("spool_ref_refused", ref=shown(ref), reason=problem)
                refused += 1
                continue
            refs.append((old, new, ref))
        elif key in ("repo", "event", "pusher"):
            fields[key] = utf8_text(value)
    if not fields.get("repo"):
        raise SpoolFormatError("no 'repo' line")
    if not refs:
        if refused:
            return []  # nothing this server can build: acked, not set aside
        raise SpoolFormatError("no 'ref' line")
    event = fields.get("event") or "push"
    priority = PUSH_PRIORITY if event == "push" else 0
    return [
        BuildRequest(
            repo=fields["repo"],
            ref=ref,
            sha=new,
            old_sha=old,
            event=event,
            priority=priority,
            pusher=fields.get("pusher", ""),
        )
        for old, new, ref in refs
        if not is_null_sha(new)
    ]


def read_requests(spool_dir: Path | str) -> list[tuple[Path, BuildRequest]]:
    """Every queued push, oldest first; one entry per pushed ref.

    A file holding several refs appears once per ref with the same path; ack
    it after all of them are stored. A file with nothing to build (only
    deletions) is removed here. A malformed file is moved to ``bad/`` with a
    warning, so one bad file never stops the queue. Stale ``tmp/`` files
    (their writer died) are removed.
    """
    spool = Path(spool_dir)
    _sweep_tmp(spool / "tmp")
    try:
        entries = [p for p in (spool / "new").iterdir() if not p.name.startswith(".")]
    except FileNotFoundError:
        return []
    found: list[tuple[Path, BuildRequest]] = []
    for path in sorted(entries, key=_order):
        try:
            text = path.read_bytes().decode("utf-8", "surrogateescape")
            requests = parse_spool(text)
        except FileNotFoundError:  # acked by someone else meanwhile
            continue
        except (OSError, SpoolFormatError) as exc:
            _quarantine(spool, path, str(exc))
            continue
        if not requests:
            log.debug("spool_nothing_to_build", file=str(path))
            ack(path)
            continue
        found.extend((path, request) for request in requests)
    return found


def _quarantine(spool: Path, path: Path, reason: str) -> None:
    bad = spool / "bad"
    try:
        bad.mkdir(exist_ok=True)
        os.replace(path, bad / path.name)
        log.warning("spool_file_malformed", file=str(path), moved_to=str(bad), reason=reason)
    except OSError as exc:
        log.warning("spool_file_malformed", file=str(path), reason=reason, move_error=str(exc))


def _sweep_tmp(tmp: Path) -> None:
    cutoff = time.time() - STALE_TMP_SECONDS
    try:
        entries = list(tmp.iterdir())
    except OSError:
        return
    for path in entries:
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def ack(path: Path | str) -> None:
    """Delete a spool file once its builds are in the store (a second ack is harmless)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
