"""Analytics at exit: a bounded flush that never retries, unsent events kept in a
spool the next process sends, and an endpoint known to be down never tried at
exit. Against a real local HTTP endpoint that hangs, refuses or answers 500."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_mixpanel import FakeMixpanel

from sauci.monitoring.analytics import AnalyticsEvent, BatchSender, MixpanelSink, Spool

TOKEN = "test-token-123"


@pytest.fixture
def fake():
    server = FakeMixpanel()
    yield server
    server.close()


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed


def event(name: str = "x") -> AnalyticsEvent:
    return AnalyticsEvent(name=name, at=time.time(), distinct_id="i_1", properties={"n": 1})


def sink(host: str, spool: Spool, **kw) -> MixpanelSink:
    return MixpanelSink(TOKEN, host=host, spool=spool, flush_interval=0.0, **kw)


def test_close_with_a_hanging_endpoint_returns_and_keeps_the_events(fake, tmp_path):
    fake.hold.clear()  # every request waits until the test lets it go
    spool = Spool(tmp_path / "mixpanel.jsonl")
    first = sink(fake.url, spool)
    sent = [event("a"), event("b")]
    for e in sent:
        first.send(e)
    fake.wait_for(lambda f: f.waiting >= 1)
    first.close(timeout=0.2)
    assert fake.waiting >= 1  # close did not wait for the endpoint
    assert 2 == first.sender.stats["spooled"]
    assert 0 == first.sender.stats["dropped"]
    assert spool.unreachable()  # it did not answer: the next process does not wait for it
    mode = stat.S_IMODE(os.stat(spool.path).st_mode)
    assert 0o600 == mode
    # Later, the endpoint answers again: the next process, once it tracks an
    # event of its own, sends what was kept first, and the request left hanging
    # by the first counts once (the same $insert_id).
    fake.hold.set()
    later = Spool(spool.path, retry_after=0.0)
    second = sink(fake.url, later)
    own = event("c")
    second.send(own)
    fake.wait_for(lambda f: len(f.requests) >= 3)
    second.close(timeout=10)
    assert 3 == second.sender.stats["sent"]
    ids = {e["properties"]["$insert_id"] for e in fake.events()}
    assert {e.insert_id for e in [*sent, own]} == ids
    assert not spool.path.exists()


def test_close_with_a_refused_endpoint_tries_once_then_keeps(tmp_path):
    spool = Spool(tmp_path / "mixpanel.jsonl")
    one = sink(refused_url(), spool, retries=5, backoff=30)
    one.send(event())
    one.close(timeout=10)  # a retry would wait 30 s: close cuts it and keeps the event
    assert 1 == one.sender.stats["failures"]
    assert 1 == one.sender.stats["spooled"]
    assert spool.unreachable()
    # The next process knows the endpoint is down: it does not try at all.
    two = sink(refused_url(), Spool(spool.path))
    two.send(event())
    two.close(timeout=10)
    assert 0 == two.sender.stats["failures"]
    assert 1 == two.sender.stats["spooled"]
    assert 2 == len(spool.path.read_bytes().splitlines())


def sending_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sauci-analytics-")]


def test_a_sender_starts_no_thread_before_its_first_event(fake, tmp_path):
    one = sink(fake.url, Spool(tmp_path / "mixpanel.jsonl"))
    assert (False, []) == (one.sender.alive, sending_threads())
    one.close(timeout=10)
    assert [] == fake.requests


def test_with_the_endpoint_known_down_no_thread_starts_and_close_keeps_the_events(fake, tmp_path):
    """What an unreachable Mixpanel costs every command after the first that found
    it down: a queue in memory and one write to the spool at close."""
    spool = Spool(tmp_path / "mixpanel.jsonl")
    spool.mark_unreachable()
    one = sink(fake.url, spool)
    kept = [event("a"), event("b")]
    for e in kept:
        one.send(e)
    assert (False, []) == (one.sender.alive, sending_threads())
    one.close(timeout=10)
    assert (2, 0, 0) == tuple(one.sender.stats[k] for k in ("spooled", "failures", "dropped"))
    assert [] == fake.requests  # not tried
    assert [e.insert_id for e in kept] == [e.insert_id for e in Spool(spool.path).claim()]


def test_once_the_endpoint_may_be_tried_again_the_next_event_starts_the_thread(fake, tmp_path):
    spool = Spool(tmp_path / "mixpanel.jsonl", retry_after=0.5)
    spool.mark_unreachable()
    one = sink(fake.url, spool)
    held = event("held")
    one.send(held)
    assert not one.sender.alive
    time.sleep(0.6)
    later = event("later")
    one.send(later)  # a long-running server: the marker's time is up
    fake.wait_for(lambda f: len(f.events()) >= 2)
    one.close(timeout=10)
    assert 2 == one.sender.stats["sent"]
    assert {held.insert_id, later.insert_id} == {
        e["properties"]["$insert_id"] for e in fake.events()
    }


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_unreadable_marker_never_reaches_the_caller(fake, tmp_path):
    """send() reads the marker on the caller's thread now: whatever is there, the
    event is taken and the endpoint tried."""
    spool = Spool(tmp_path / "mixpanel.jsonl")
    Path(str(spool.path) + ".unreachable").mkdir(parents=True)  # reading it fails
    one = sink(fake.url, spool)
    one.send(event())
    one.close(timeout=10)
    assert 1 == one.sender.stats["sent"]


def test_once_a_running_sender_finds_the_endpoint_down_it_holds_later_batches(tmp_path):
    """A server's sender that failed a batch does not try the next ones (each try
    with its retries) until the marker's time is up; close keeps them."""
    spool = Spool(tmp_path / "mixpanel.jsonl", retry_after=60)
    one = sink(refused_url(), spool, retries=0)
    one.send(event("a"))
    deadline = time.monotonic() + 30
    while not spool.unreachable():
        assert time.monotonic() < deadline, "the first batch was not tried"
        time.sleep(0.01)
    one.send(event("b"))
    while one.sender._queue.qsize():  # the thread took it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    assert 1 == one.sender.stats["failures"]  # "b" was not tried
    one.close(timeout=10)
    assert (1, 2) == (one.sender.stats["failures"], one.sender.stats["spooled"])
    assert ["a", "b"] == [e.name for e in Spool(spool.path).claim()]


def test_an_endpoint_that_answers_500_at_exit_gets_one_try(fake, tmp_path):
    fake.fail_with = 500
    spool = Spool(tmp_path / "mixpanel.jsonl")
    one = sink(fake.url, spool, retries=5, backoff=30)
    one.send(event())
    one.close(timeout=10)
    assert 1 == len(fake.requests)
    assert (1, 1) == (one.sender.stats["failures"], one.sender.stats["spooled"])


def test_a_full_spool_drops_with_a_count(tmp_path, caplog):
    spool = Spool(tmp_path / "mixpanel.jsonl", max_bytes=600)
    spool.mark_unreachable()  # so the sender does not claim and send the file meanwhile
    sender = BatchSender(lambda batch: None, name="t", spool=spool)
    sender._keep([event() for _ in range(20)], "test")
    sender.close()
    kept = len(spool.path.read_bytes().splitlines())
    assert 0 < kept < 20
    assert (kept, 20 - kept) == (sender.stats["spooled"], sender.stats["dropped"])
    assert spool.path.stat().st_size <= 600


def test_two_processes_never_both_claim_the_same_events(tmp_path):
    path = tmp_path / "mixpanel.jsonl"
    Spool(path).append([event(str(i)) for i in range(50)])
    script = (
        "import sys, json\n"
        "from sauci.monitoring.analytics import Spool\n"
        "sys.stdin.readline()\n"
        "print(json.dumps([e.insert_id for e in Spool(__import__('pathlib').Path(sys.argv[1])).claim()]))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:  # released together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    claimed = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    every = [i for ids in claimed for i in ids]
    assert 50 == len(every) == len(set(every))


def test_events_of_a_process_that_died_while_sending_are_sent_again(tmp_path):
    path = tmp_path / "mixpanel.jsonl"
    Spool(path).append([event("lost")])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    os.rename(path, path.with_name(f"{path.name}.sending-{dead.stdout.strip()}"))
    (found,) = Spool(path).claim()
    assert "lost" == found.name
    assert [] == Spool(path).claim()


def test_a_spool_written_by_someone_else_is_read_safely(tmp_path):
    """The data dir is the server's own, but a cut line (a crash) or junk must not
    stop the sender, and only scalar properties are sent on."""
    path = tmp_path / "mixpanel.jsonl"
    good = {"name": "ok", "at": 1.0, "distinct_id": "i", "insert_id": "x1", "properties": {}}
    odd = {**good, "insert_id": "x2", "properties": {"deep": {"a": [1]}, "n": 2}}
    path.write_text("not json\n" + json.dumps(good) + "\n" + json.dumps(odd) + '\n{"name": "cut')
    found = Spool(path).claim()
    assert ["x1", "x2"] == [e.insert_id for e in found]
    assert {"n": 2} == dict(found[1].properties)


def test_sauci_run_with_a_hanging_endpoint_passes_and_keeps_its_events(fake, tmp_path):
    fake.hold.clear()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  hello:\n    run: echo hi\n")
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True)
    data = tmp_path / "data"
    env = {
        **os.environ,
        "SAUCI_DATA_DIR": str(data),
        "SAUCI_MIXPANEL_TOKEN": TOKEN,
        "SAUCI_MIXPANEL_HOST": fake.url,
    }
    env.pop("SAUCI_STORE", None)
    done = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == done.returncode, done.stderr
    assert "Traceback" not in done.stderr
    (spooled,) = (data / "analytics").glob("mixpanel-*.jsonl")
    names = [json.loads(line)["name"] for line in spooled.read_text().splitlines()]
    assert {"cli_command", "build_started", "build_finished"} <= set(names)
    assert Path(str(spooled) + ".unreachable").exists()


def test_the_client_is_stdlib_and_imported_before_the_exit_flush(fake):
    """A command's delivery must fit in the 200 ms exit flush: the official
    mixpanel library's import alone (httpx, requests, rich) took 230-270 ms of CPU,
    so no command's delivery reached the endpoint; and the client is imported when
    the thread starts, beside the command's work, so that at exit the flush waits
    only for the request."""
    script = (
        "import sys, time\n"
        "from sauci.monitoring.analytics import AnalyticsEvent, MixpanelSink\n"
        "before = set(sys.modules)\n"
        f"sink = MixpanelSink({TOKEN!r}, host=sys.argv[1], flush_interval=60, retries=0)\n"
        "sink.send(AnalyticsEvent(name='x', at=time.time(), distinct_id='i_1'))\n"
        "deadline = time.monotonic() + 30\n"
        "while 'urllib.request' not in sys.modules and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print('urllib.request' in sys.modules, sink.sender.stats['sent'])\n"
        "sink.close(timeout=30)\n"
        "assert 1 == sink.sender.stats['sent'], sink.sender.stats\n"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, fake.url], capture_output=True, text=True, timeout=120
    )
    assert 0 == done.returncode, done.stderr
    before_close, imported = done.stdout.splitlines()
    assert "True 0" == before_close  # imported before close, nothing sent yet
    assert set() == set(imported.split()) - sys.stdlib_module_names
    assert 1 == len(fake.events())


# -- a command's local sink and a locked store ---------------------------------------------


def test_a_commands_close_does_not_wait_for_a_locked_store(tmp_path):
    """A guard: the local rows are written on the sender's thread, never on the
    closing one (session 15 tried that, and a database locked by another process
    held a command's exit for the store's 5 s busy timeout). With the SQLite
    database locked by another connection, close gives up after its bound,
    counts the rows as dropped and leaves the write to the thread."""
    import sqlite3

    from sauci.monitoring import install
    from sauci.storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "sauci.db")
    other = sqlite3.connect(tmp_path / "sauci.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        handle = install(
            store=store,
            component="run",
            command="run",
            data_dir=tmp_path,
            metrics=False,
            environ={"SAUCI_ANALYTICS": "on"},
        )
        (local,) = handle.analytics.sinks
        handle.close(timeout=0.2)
        assert local.sender.alive  # still in the write: close did not wait for it
        assert 1 == local.sender.stats["dropped"]
        other.execute("ROLLBACK")
        wait_until_dead = time.monotonic() + 30
        while local.sender.alive and time.monotonic() < wait_until_dead:
            time.sleep(0.01)
    finally:
        other.close()
        store.close()
