"""A server whose operator chose `--sandbox local` (every pusher trusted):
what still holds. Steps get an allow-listed environment, never the server's
own variables even when a pipeline names them as secrets; and a build that
kills its server is tried `--attempts` times, then ends errored, so the
server does not crash-loop on it."""

from __future__ import annotations

from pathlib import Path

from polling import wait_for
from security_helpers import ASKED_SECRETS, Origin, Served, clean_env, marker

from sauci.core.models import Status


def test_local_steps_get_none_of_the_servers_environment(fresh_base, tmp_path):
    origin = Origin(tmp_path)
    env_markers = {
        "SAUCI_ADMIN_PASSWORD": marker("admin"),
        "SAUCI_WEBHOOK_SECRET": marker("webhook"),
        "MARKER_VAR": marker("env"),
    }
    served = Served(
        fresh_base / "data", origin.bare, args=["--sandbox", "local"], env=clean_env(**env_markers)
    )
    try:
        pipeline = (
            "steps:\n"
            "  env:\n"
            f"    secrets: [{', '.join(ASKED_SECRETS)}]\n"
            "    run: |\n"
            "      env\n"
            '      echo "named: [$SAUCI_ADMIN_PASSWORD] [$SAUCI_WEBHOOK_SECRET] [$MARKER_VAR]"\n'
            "      echo STEP-RAN\n"
        )
        sha = origin.commit(pipeline, message="env")
        origin.push("refs/heads/main")
        build = served.build_of(sha)
        log = served.logs(build)["env"]
    finally:
        served.stop()

    assert Status.PASSED == build.status, log
    assert b"STEP-RAN" in log
    assert b"named: [] [] []" in log
    assert [] == [name for name, value in env_markers.items() if value.encode() in log]


def _write_pid(pidfile: Path, pid: int) -> None:
    partial = pidfile.with_suffix(".partial")
    partial.write_text(str(pid))
    partial.rename(pidfile)  # the step never reads half a pid


def test_a_build_that_kills_its_server_is_tried_attempts_times(fresh_base, tmp_path):
    origin = Origin(tmp_path)
    pidfile = tmp_path / "server.pid"
    runs = tmp_path / "runs.txt"
    # `local` is no boundary: the step reads the server's pid from a file the
    # test writes after each start (waiting for it, as a restart may be slow).
    pipeline = (
        "steps:\n"
        "  killer:\n"
        "    run: |\n"
        f"      while [ ! -s {pidfile} ]; do sleep 0.05; done\n"
        f"      echo run >> {runs}\n"
        f"      kill -9 $(cat {pidfile})\n"
        "      sleep 60\n"
    )
    sha = origin.commit(pipeline, message="kill the server")
    served = Served(
        fresh_base / "data", origin.bare, args=["--sandbox", "local", "--attempts", "3"]
    )
    try:
        _write_pid(pidfile, served.pid)
        origin.push("refs/heads/main")
        for attempt in (1, 2, 3):
            wait_for(
                lambda: not served.alive(), f"the step of attempt {attempt} to kill the server"
            )
            assert attempt == len(runs.read_text().splitlines())
            # A service manager starts the server again.
            pidfile.unlink()
            served.start()
            _write_pid(pidfile, served.pid)
        store = served.store()

        def tried() -> list:
            builds = [b for b in store.list_builds() if b.sha == sha]
            return sorted(builds, key=lambda b: b.id) if all(b.status.done for b in builds) else []

        builds = wait_for(tried, "the third try to end")
        assert [1, 2, 3] == [b.attempt for b in builds]
        assert [Status.ERRORED] * 3 == [b.status for b in builds]
        assert "the runner died 3 times; not tried again" == builds[-1].reason
        assert 3 == len(runs.read_text().splitlines())
        assert served.alive()
        # and it keeps serving
        after = origin.commit("steps:\n  after:\n    run: echo serving\n", message="next")
        origin.push("refs/heads/next")
        assert Status.PASSED == served.build_of(after, "refs/heads/next").status
        assert 3 == len(runs.read_text().splitlines())
    finally:
        served.stop()
