"""The spool: what is written is read back exactly, oldest first; bad files are set
aside without stopping the queue; acked files are gone."""

from __future__ import annotations

import os
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from sauci.core.models import BuildRequest
from sauci.triggers import ack, ensure_spool, read_requests, write_request
from sauci.triggers import spool as spool_module

A = "a" * 40
B = "b" * 40
ZERO = "0" * 40


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def warning(self, event: str, **kw) -> None:
        self.events.append((event, kw))

    debug = info = warning


def put(spool, name: str, text: str) -> None:
    ensure_spool(spool)
    (spool / "new" / name).write_text(text)


def test_written_request_reads_back_as_a_push(tmp_path):
    request = BuildRequest(
        repo="/srv/git/p.git", ref="refs/heads/main", sha=B, old_sha=A, event="push",
        priority=10, pusher="alice",
    )  # fmt: skip
    path = write_request(tmp_path / "spool", request)
    assert path.parent == tmp_path / "spool" / "new"
    assert [(path, request)] == read_requests(tmp_path / "spool")
    assert [] == os.listdir(tmp_path / "spool" / "tmp")


def test_file_format_is_plain_lines(tmp_path):
    request = BuildRequest(repo="/r", ref="refs/heads/x", sha=B, event="push", pusher="bob")
    path = write_request(tmp_path, request)
    assert f"sauci-spool 1\nrepo /r\nevent push\npusher bob\nref {ZERO} {B} refs/heads/x\n" == (
        path.read_text()
    )


def test_one_file_with_several_refs_gives_one_request_each_and_skips_deletions(tmp_path):
    put(tmp_path, "1.1.x", (
        "sauci-spool 1\nrepo /srv/r.git\nevent push\npusher carol\n"
        f"ref {ZERO} {A} refs/heads/new\n"
        f"ref {A} {ZERO} refs/heads/gone\n"
        f"ref {A} {B} refs/tags/v1\n"
    ))  # fmt: skip
    requests = read_requests(tmp_path)
    assert [("refs/heads/new", A, ZERO), ("refs/tags/v1", B, A)] == [
        (r.ref, r.sha, r.old_sha) for _, r in requests
    ]
    assert {tmp_path / "new" / "1.1.x"} == {p for p, _ in requests}
    assert all(r.priority == 10 and r.pusher == "carol" for _, r in requests)


def test_file_with_only_deletions_is_removed(tmp_path):
    put(tmp_path, "1.1.x", f"sauci-spool 1\nrepo /r\nevent push\nref {A} {ZERO} refs/heads/x\n")
    assert [] == read_requests(tmp_path)
    assert [] == os.listdir(tmp_path / "new")


def test_oldest_first_by_time_in_the_name(tmp_path):
    body = "sauci-spool 1\nrepo /r\nevent push\nref {z} {sha} refs/heads/{n}\n"
    # Shell names (seconds and nanoseconds, pid) and Python names sort together.
    for name, n in [("1700000000200000000.99.sauci.q", 3), ("999999999000000000.5.py.x", 1),
                    ("1700000000100000000.7.sauci.a", 2)]:  # fmt: skip
        put(tmp_path, name, body.format(z=ZERO, sha=A, n=n))
    assert ["refs/heads/1", "refs/heads/2", "refs/heads/3"] == [
        r.ref for _, r in read_requests(tmp_path)
    ]


def test_malformed_files_go_to_bad_with_a_warning_and_the_rest_is_read(tmp_path, monkeypatch):
    log = RecordingLog()
    monkeypatch.setattr(spool_module, "log", log)
    good = f"sauci-spool 1\nrepo /r\nevent push\nref {ZERO} {A} refs/heads/ok\n"
    put(tmp_path, "1.1.a", "not a spool file\n")
    put(tmp_path, "2.1.b", "sauci-spool 1\nevent push\nref {ZERO} {A} refs/heads/x\n")
    put(tmp_path, "3.1.c", f"sauci-spool 1\nrepo /r\nref {ZERO} nothex refs/heads/x\n")
    put(tmp_path, "4.1.d", "sauci-spool 1\nrepo /r\nref onlytwo parts\n")
    put(tmp_path, "5.1.e", "sauci-spool 1\nrepo /r\n")
    (tmp_path / "new" / "6.1.f").write_bytes(b"\xff\xfe\x00garbage")
    put(tmp_path, "7.1.g", good)
    assert ["refs/heads/ok"] == [r.ref for _, r in read_requests(tmp_path)]
    assert ["1.1.a", "2.1.b", "3.1.c", "4.1.d", "5.1.e", "6.1.f"] == sorted(
        os.listdir(tmp_path / "bad")
    )
    assert 6 == len(log.events)
    assert {"spool_file_malformed"} == {event for event, _ in log.events}
    assert "first line is not 'sauci-spool 1'" == log.events[0][1]["reason"]


def test_unknown_keys_are_ignored_for_forward_compatibility(tmp_path):
    put(tmp_path, "1.1.a", f"sauci-spool 1\nrepo /r\nvia gitolite\nref {ZERO} {A} refs/heads/x\n")
    assert [A] == [r.sha for _, r in read_requests(tmp_path)]


def test_ack_deletes_and_a_second_ack_is_harmless(tmp_path):
    path = write_request(tmp_path, BuildRequest(repo="/r", ref="refs/heads/x", sha=A, event="push"))
    ack(path)
    ack(path)
    assert [] == read_requests(tmp_path)


def test_missing_spool_reads_as_empty(tmp_path):
    assert [] == read_requests(tmp_path / "nowhere")


def test_stale_tmp_files_of_dead_writers_are_swept(tmp_path):
    ensure_spool(tmp_path)
    stale = tmp_path / "tmp" / "sauci.dead"
    fresh = tmp_path / "tmp" / "sauci.writing"
    stale.write_text("half")
    fresh.write_text("half")
    old = time.time() - spool_module.STALE_TMP_SECONDS - 10
    os.utime(stale, (old, old))
    read_requests(tmp_path)
    assert ["sauci.writing"] == os.listdir(tmp_path / "tmp")


refnames = st.from_regex(r"refs/(heads|tags)/[A-Za-z0-9._/-]{1,30}", fullmatch=True)
shas = st.from_regex(r"[0-9a-f]{40}", fullmatch=True).filter(lambda s: set(s) != {"0"})
texts = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), min_size=1
)


@settings(max_examples=60, deadline=None)
@given(repo=texts, pusher=texts | st.just(""), ref=refnames, sha=shas, old=shas | st.just(ZERO))
def test_any_request_round_trips(tmp_path_factory, repo, pusher, ref, sha, old):
    spool = tmp_path_factory.mktemp("spool")
    request = BuildRequest(repo=repo, ref=ref, sha=sha, old_sha=old, event="push", priority=10,
                           pusher=pusher)  # fmt: skip
    write_request(spool, request)
    [(_, back)] = read_requests(spool)
    # A value that starts or ends with spaces keeps them: the line is split once.
    assert request == back


def test_a_ref_no_store_can_hold_is_left_out_and_the_queue_goes_on(tmp_path, monkeypatch):
    """git takes any bytes in a branch name and no length limit: a pushed
    `bad\\xff` (not UTF-8: SQLite refuses it) or a 3,000-byte name (past
    PostgreSQL's index row) made every round of `sauci serve` fail on the
    first spool file, so no later push was ever built. Such a ref is left out
    with a warning; the other refs of the push, and later pushes, are read."""
    recorded = RecordingLog()
    monkeypatch.setattr(spool_module, "log", recorded)
    ensure_spool(tmp_path)
    long = "refs/heads/" + "/".join(["x" * 200] * 15)
    (tmp_path / "new" / "1.1.x").write_bytes(
        b"sauci-spool 1\nrepo /srv/r.git\nevent push\npusher m\xffallory\n"
        + f"ref {ZERO} {A} refs/heads/bad".encode()
        + b"\xff\xfe\n"
        + f"ref {ZERO} {A} {long}\n".encode()
        + f"ref {ZERO} {B} refs/heads/fine\n".encode()
    )
    put(
        tmp_path,
        "2.1.x",
        f"sauci-spool 1\nrepo /srv/r.git\nevent push\nref {A} {B} refs/heads/main\n",
    )
    requests = [r for _, r in read_requests(tmp_path)]
    assert ["refs/heads/fine", "refs/heads/main"] == [r.ref for r in requests]
    assert "m\ufffdallory" == requests[0].pusher  # shown, never refused
    refused = [kw["ref"] for event, kw in recorded.events if event == "spool_ref_refused"]
    assert ["refs/heads/bad\\xff\\xfe", long[:80] + "..."] == refused
