"""Under the default policy (the namespace sandbox) a pushed step reaches
nothing of the server: not its data dir, not its environment, not root's
files, not its process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from polling import wait_for
from security_helpers import assert_nothing_leaked, reads_done, reads_pipeline, server_paths

from sauci.core.models import Status
from sauci.sandbox.namespace import DEFAULT_HOST_UID


def test_a_step_reads_nothing_of_the_server(namespace_target):
    """The data dir's files, the secrets file, /etc/shadow (the server runs as
    root), the environment of every process the step can see, and secrets
    named in `secrets:` that the server holds only in its own environment or
    for another repository: none reaches the step, its log or its artifacts."""
    target = namespace_target
    if os.geteuid() == 0:
        # The control: the step's host uid could read these files; only the
        # sandbox's hiding keeps them from it.
        for path in (target.marker_file, target.secrets_file):
            ids = [f"--reuid={DEFAULT_HOST_UID}", f"--regid={DEFAULT_HOST_UID}", "--clear-groups"]
            as_step = ["setpriv", *ids, "cat", str(path)]
            assert 0 == subprocess.run(as_step, capture_output=True, check=False).returncode
    sha = target.origin.commit(reads_pipeline(server_paths(target)), message="read the server")
    target.origin.push("refs/heads/reads")
    build = target.served.build_of(sha, "refs/heads/reads")

    log = target.served.logs(build)["reads"]
    assert (Status.PASSED, None) == (build.status, build.reason), log
    assert b"STEP-RAN" in log
    assert [] == reads_done(log)
    assert b"named: [] [] [] []" in log
    # The control: what the step wrote was kept, so the scan below saw it.
    kept = {p.name for p in (target.data / "artifacts").rglob("*") if p.is_file()}
    assert {"env.txt", "environ.txt", "ps.txt"} <= kept
    assert_nothing_leaked(target, build)


def test_a_step_cannot_signal_the_server(namespace_target):
    """kill -9 of the server's pid (handed in through the commit), of every
    process (-1), and pkill by name: the server lives on and builds the next push."""
    target = namespace_target
    pid = target.served.pid
    pipeline = (
        "steps:\n"
        "  signals:\n"
        "    run: |\n"
        "      set +e\n"
        f"      kill -9 {pid} && echo KILLED-SERVER\n"
        "      kill -9 -1 && echo KILLED-ALL\n"
        "      pkill -9 -f 'sauci[ ]serve' && echo PKILLED\n"
        f"      kill -0 {pid} 2>/dev/null && echo SEES-SERVER\n"
        "      echo STEP-RAN\n"
    )
    sha = target.origin.commit(pipeline, message="kill the server")
    target.origin.push("refs/heads/signals")
    build = target.served.build_of(sha, "refs/heads/signals")

    log = target.served.logs(build)["signals"]
    assert Status.PASSED == build.status, log
    assert b"STEP-RAN" in log
    assert b"KILLED-SERVER" not in log
    assert b"PKILLED" not in log
    assert b"SEES-SERVER" not in log
    assert target.served.alive()
    assert pid == target.served.pid
    after = target.origin.commit("steps:\n  after:\n    run: echo still serving\n", message="next")
    target.origin.push("refs/heads/signals-after")
    assert Status.PASSED == target.served.build_of(after, "refs/heads/signals-after").status


def test_a_step_leaves_nothing_running(namespace_target):
    """Daemonized children (setsid, nohup, double fork) end with the step."""
    target = namespace_target
    pipeline = (
        "steps:\n"
        "  daemons:\n"
        "    run: |\n"
        "      setsid sleep 312 > /dev/null 2>&1 < /dev/null &\n"
        "      (nohup sleep 313 > /dev/null 2>&1 &) &\n"
        "      echo STEP-RAN\n"
    )
    sha = target.origin.commit(pipeline, message="daemons")
    target.origin.push("refs/heads/daemons")
    build = target.served.build_of(sha, "refs/heads/daemons")

    assert b"STEP-RAN" in target.served.logs(build)["daemons"]

    def leftovers() -> list[str]:
        out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line.startswith(("sleep 312", "sleep 313"))]

    wait_for(lambda: not leftovers(), "the step's daemons to end", timeout=30)


def test_a_step_cannot_flood_the_stored_log(namespace_target):
    """The server's log quota (SAUCI_LOG_LIMIT, 1 MiB here) holds against 8 MiB of output."""
    target = namespace_target
    pipeline = "steps:\n  flood:\n    run: head -c 8388608 /dev/zero | tr '\\0' x\n"
    sha = target.origin.commit(pipeline, message="flood")
    target.origin.push("refs/heads/flood")
    build = target.served.build_of(sha, "refs/heads/flood")

    (step,) = target.served.store().list_steps(build.id)
    assert "log exceeded 1 MiB; output after that was dropped" == step.reason
    assert Path(step.log_path).stat().st_size < (1 << 20) + 4096


def test_a_matrix_cannot_flood_past_the_build_s_log_quota(namespace_target):
    """SAUCI_BUILD_LOG_LIMIT (3 MiB here) holds for all entries of a matrix
    together, each under its own 1 MiB limit: the ones still writing are ended."""
    target = namespace_target
    pipeline = (
        "steps:\n  flood:\n    matrix: {n: [1, 2, 3, 4, 5, 6]}\n"
        "    run: head -c 900000 /dev/zero | tr '\\0' x; sleep 0.5; yes\n"
    )
    sha = target.origin.commit(pipeline, message="matrix flood")
    target.origin.push("refs/heads/matrix-flood")
    build = target.served.build_of(sha, "refs/heads/matrix-flood", timeout=120)

    steps = target.served.store().list_steps(build.id)
    assert 6 == len(steps)
    total = sum(Path(s.log_path).stat().st_size for s in steps)
    assert total <= 3 * (1 << 20) + 6 * 4096
    ended = [s for s in steps if (s.reason or "").startswith("log limit: the build's logs")]
    assert ended, [s.reason for s in steps]
    assert Status.FAILED == build.status
