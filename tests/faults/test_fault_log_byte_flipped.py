"""A step's log file changed in place after its build, its size unchanged (one
byte flipped): the checksum recorded beside it when the step ended finds it.
``sauci logs`` and ``sauci show`` say the file no longer matches; where the
store holds the log (Redis) every reader shows the store's copy, where the
file is the only copy (the embedded store) it is shown with that warning.
Never a traceback, never the altered bytes passed off as the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.cli import main
from sauci.contrib.django.logs import LogSource
from sauci.core.config import Settings
from sauci.core.logcheck import checksum_path, log_file_changed
from sauci.core.logtail import step_tail
from sauci.storage import open_store

LOG = b"".join(b"line %d\n" % i for i in range(1, 2001))


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("persistent_redis").url


def test_a_byte_flipped_in_place_is_found_and_said(store_url, tmp_path, monkeypatch, capsysbinary):
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
    assert checksum_path(path).exists() and log_file_changed(path) is False
    in_file = "log_files" in store.capabilities

    monkeypatch.setenv("SAUCI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SAUCI_STORE", store_url)
    assert main(["logs", str(outcome.build.id), "talk"]) == 0
    assert capsysbinary.readouterr().err == b""  # an intact file: nothing to say

    at = LOG.index(b"line 1999")  # in the tail, so the failed-step tail shows it too
    with open(path, "r+b") as fh:
        fh.seek(at + 5)
        fh.write(b"7")  # "line 1999" -> "line 7999", same size
    assert path.stat().st_size == len(LOG)
    assert log_file_changed(path) is True

    assert main(["logs", str(outcome.build.id), "talk"]) == 0
    shown = capsysbinary.readouterr()
    said = shown.err.decode()
    assert "no longer matches the checksum" in said and str(path) in said
    assert main(["show", str(outcome.build.id), "--color", "never"]) == 0
    summary = capsysbinary.readouterr().out.decode()
    assert "no longer matches the checksum" in summary
    source = LogSource(store, step)
    assert source.problem is not None and "no longer matches" in source.problem
    paged = source.read(0, source.size())
    tail = step_tail(store, step, lines=2)
    if in_file:
        # The file is the only copy: shown as it is, with the warning beside it.
        assert "no other copy" in said and "no other copy" in source.problem
        assert shown.out == paged == path.read_bytes()
    else:
        assert "showing the store's copy" in said
        assert shown.out == LOG
        assert paged == LOG
        assert tail == ["line 1999", "line 2000"]
        assert "line 1999" in summary and "line 7999" not in summary
    store.close()
