"""A step's log file cut and overwritten after its build: where the store
holds the log (Redis), every reader (``sauci logs``, the page's LogSource,
the failed-step tail) shows the stored log, not the damaged file; where the
file is the log (the embedded store), readers show what is left, without a
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.cli import main
from sauci.cli._ansi import LogForTerminal
from sauci.contrib.django.logs import LogSource
from sauci.core.config import Settings
from sauci.core.logtail import step_tail
from sauci.storage import open_store

LOG = b"".join(b"line %d\n" % i for i in range(1, 2001))


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("persistent_redis").url


def test_a_corrupt_log_file_never_shows_as_the_log(store_url, tmp_path, monkeypatch, capsysbinary):
    store = open_store(store_url)
    settings = Settings(data_dir=tmp_path / "data")
    runner = LocalRunner(store=store, settings=settings, secrets={})
    (tmp_path / "ws").mkdir()
    pipeline = Pipeline(steps=[Step(name="talk", run="seq -f 'line %g' 1 2000; exit 3")])
    outcome = runner.run_pipeline(pipeline, tmp_path / "ws", BuildRequest(repo="/r"))
    assert outcome.build.status is Status.FAILED
    (step,) = store.list_steps(outcome.build.id)
    path = Path(step.log_path)
    assert path.read_bytes() == LOG
    in_file = "log_files" in store.capabilities

    # The file is cut in the middle and garbage is written after it.
    with open(path, "r+b") as fh:
        fh.truncate(len(LOG) // 2)
        fh.seek(0, 2)
        fh.write(b"\x00garbage\xff\n")

    monkeypatch.setenv("SAUCI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SAUCI_STORE", store_url)
    capsysbinary.readouterr()
    assert main(["logs", str(outcome.build.id), "talk"]) == 0
    shown = capsysbinary.readouterr().out
    source = LogSource(store, step)
    paged = source.read(0, source.size())
    tail = step_tail(store, step, lines=2)
    if in_file:
        # The file was the only copy: what is left of it, read within the
        # size the store recorded; no traceback. `sauci logs` shows it as a
        # terminal may be given it (the NUL written into it goes).
        terminal = LogForTerminal(colour=False)
        assert shown == terminal.feed(paged) + terminal.flush()
        assert paged.startswith(LOG[: len(LOG) // 2]) and shown.startswith(LOG[: len(LOG) // 2])
    else:
        assert shown == LOG
        assert paged == LOG
        assert tail == ["line 1999", "line 2000"]
    store.close()
