"""LocalSandbox with real processes: exit codes, signals, timeouts, cancel,
leftovers, output, environment and, where the machine allows, cgroup limits.

Every test checks afterwards that no process of the step is left: each step
gets a unique SAUCI_TEST_MARK variable, and /proc must hold no live process
whose environment carries it (nor a cgroup of the step).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from sauci.core.logsink import LogSink
from sauci.core.models import EndedBy, Limits, Step, StepResult
from sauci.exceptions import SandboxError
from sauci.sandbox import _proctree
from sauci.sandbox._pump import GATHER
from sauci.sandbox.local import TOKEN_VARIABLE, LocalSandbox, sweep
from sauci.typing import Sandbox

PREFIX = f"sauci-test{os.getpid()}-"
PROMPTLY = 15.0  # generous bound for "ended promptly" (the real figure is ~1 s)


class MemoryLog:
    """A LogWriter that keeps everything in memory."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.exceeded = False

    def write(self, data: bytes) -> None:
        self.data += data


def _cgroup_sandbox() -> LocalSandbox:
    try:
        return LocalSandbox(use_cgroups=True, grace=0.5, cgroup_prefix=PREFIX)
    except SandboxError as exc:
        pytest.skip(f"cgroups cannot be created on this machine: {exc}")


def _v2_root() -> Path:
    """The cgroup v2 tree: the only one, or the unified one of a hybrid setup."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return root
    return root / "unified"


@pytest.fixture(params=["cgroup", "cgroup-v2", "fallback"])
def sandbox(request: pytest.FixtureRequest) -> LocalSandbox:
    if request.param == "cgroup":
        return _cgroup_sandbox()
    if request.param == "cgroup-v2":
        try:
            return LocalSandbox(
                use_cgroups=True, grace=0.5, cgroup_prefix=PREFIX, cgroup_root=_v2_root()
            )
        except SandboxError as exc:
            pytest.skip(f"no cgroup v2 tree to create cgroups in: {exc}")
    return LocalSandbox(use_cgroups=False, grace=0.5, cgroup_prefix=PREFIX)


@pytest.fixture
def cgroup_sandbox() -> LocalSandbox:
    return _cgroup_sandbox()


def _marked(mark: str) -> list[int]:
    needle = f"SAUCI_TEST_MARK={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def _step_cgroups(sandbox: LocalSandbox, label: str) -> list[str]:
    if sandbox.layout is None:
        return []
    return [
        f"{base}/{name}"
        for base in sandbox.layout.bases.values()
        for name in os.listdir(base)
        if name.startswith(f"{PREFIX}{label}-")
    ]


def run(
    sandbox: LocalSandbox,
    script: str,
    workspace: Path,
    *,
    log: object | None = None,
    env: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
    **step: object,
) -> tuple[StepResult, bytes]:
    """Run ``script`` as a step; assert that nothing of it is left afterwards."""
    mark = uuid.uuid4().hex
    full_env = {"PATH": os.environ["PATH"], "SAUCI_TEST_MARK": mark, **(env or {})}
    writer = log if log is not None else MemoryLog()
    result = sandbox.run(
        Step(name="test", run=script, **step),  # type: ignore[arg-type]
        workspace,
        writer,  # type: ignore[arg-type]
        env=full_env,
        cancel=cancel or threading.Event(),
        label=f"t{mark[:12]}",
    )
    assert [] == _marked(mark), "processes of the step are still running"
    assert [] == _step_cgroups(sandbox, f"t{mark[:12]}"), "the step's cgroup was not removed"
    return result, bytes(getattr(writer, "data", b""))


def test_satisfies_the_sandbox_protocol(sandbox: LocalSandbox) -> None:
    assert isinstance(sandbox, Sandbox)


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_code_is_reported(sandbox: LocalSandbox, tmp_path: Path, code: int) -> None:
    result, output = run(sandbox, f"echo out; echo err >&2; exit {code}", tmp_path)
    assert (code, None, None) == (result.exit_code, result.signal, result.ended_by)
    assert b"out\nerr\n" == output  # stdout and stderr in one stream
    assert result.ok is (code == 0)
    assert result.duration > 0


def test_killed_by_a_signal_has_no_exit_code(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, _ = run(sandbox, "kill -9 $$", tmp_path)
    assert (None, 9, None) == (result.exit_code, result.signal, result.ended_by)


def test_timeout_ends_the_step_promptly(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, _ = run(sandbox, "echo started; sleep 1000", tmp_path, timeout=1)
    assert EndedBy.TIMEOUT == result.ended_by
    assert "killed after 1 s timeout" == result.reason
    assert result.exit_code is None
    assert 1 <= result.duration < PROMPTLY


def test_setsid_grandchild_is_ended_on_timeout(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, _ = run(sandbox, "setsid sleep 1000 & sleep 1000", tmp_path, timeout=1)
    assert EndedBy.TIMEOUT == result.ended_by


def test_setsid_grandchild_is_ended_after_success(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, output = run(sandbox, "setsid sleep 1000 & echo started", tmp_path)
    assert (0, None) == (result.exit_code, result.ended_by)
    assert b"started\n" == output
    assert result.duration < PROMPTLY


def test_double_forked_daemon_is_ended(sandbox: LocalSandbox, tmp_path: Path) -> None:
    daemon = (
        "import os, time\n"
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        "time.sleep(1000)\n"
    )
    script = f"{sys.executable} -c '{daemon}'; echo parent done"
    result, output = run(sandbox, script, tmp_path)
    assert 0 == result.exit_code
    assert b"parent done\n" == output


def test_background_job_left_after_exit_0_is_ended(sandbox: LocalSandbox, tmp_path: Path) -> None:
    # The job holds the output pipe open: run() must not wait for EOF.
    result, output = run(sandbox, "sleep 1000 & echo done; exit 0", tmp_path)
    assert (0, None) == (result.exit_code, result.ended_by)
    assert b"done\n" == output
    assert result.duration < PROMPTLY


def test_process_ignoring_sigterm_is_killed(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, _ = run(sandbox, "trap '' TERM; sleep 1000", tmp_path, timeout=0.5)
    assert EndedBy.TIMEOUT == result.ended_by
    assert 9 == result.signal  # SIGTERM was ignored; SIGKILL after the grace period
    assert result.duration < PROMPTLY


def test_leftover_ignoring_sigterm_is_killed(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, _ = run(sandbox, "bash -c \"trap '' TERM; sleep 1000\" & sleep 0.2; exit 0", tmp_path)
    assert (0, None) == (result.exit_code, result.ended_by)
    assert result.duration < PROMPTLY


def test_process_closing_stdout_is_ended(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, output = run(sandbox, "(exec >&- 2>&-; sleep 1000) & echo done", tmp_path)
    assert (0, None) == (result.exit_code, result.ended_by)
    assert b"done\n" == output


def test_main_process_closing_stdout_still_times_out(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, output = run(sandbox, "echo bye; exec >&- 2>&-; sleep 1000", tmp_path, timeout=1)
    assert EndedBy.TIMEOUT == result.ended_by
    assert b"bye\n" == output
    assert result.duration < PROMPTLY


def test_cancel_from_another_thread(sandbox: LocalSandbox, tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    try:
        result, _ = run(sandbox, "sleep 1000", tmp_path, cancel=cancel)
    finally:
        timer.cancel()
    assert EndedBy.CANCELLED == result.ended_by
    assert "cancelled" == result.reason
    assert result.duration < PROMPTLY


def test_cancel_is_noticed_during_a_flood_of_output(sandbox: LocalSandbox, tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    try:
        result, _ = run(sandbox, "yes", tmp_path, cancel=cancel, log=_DropLog())
    finally:
        timer.cancel()
    assert EndedBy.CANCELLED == result.ended_by
    assert result.duration < PROMPTLY


class _DropLog:
    exceeded = False

    def write(self, data: bytes) -> None:
        pass


def test_output_flood_is_capped_and_drained(sandbox: LocalSandbox, tmp_path: Path) -> None:
    path = tmp_path / "logs" / "step.log"
    with LogSink(path, limit=1024 * 1024) as sink:
        result, _ = run(sandbox, "head -c 200000000 /dev/zero; echo end", tmp_path, log=sink)
    assert 0 == result.exit_code  # never blocked on a full pipe
    assert result.log_truncated
    notice = b"\nsauci: log exceeded 1 MiB; output after that was dropped\n"
    assert 1024 * 1024 + len(notice) == path.stat().st_size
    assert path.read_bytes().endswith(notice)
    assert "log exceeded 1 MiB; output after that was dropped" == sink.reason


def test_binary_output_is_kept_byte_exact(sandbox: LocalSandbox, tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    with LogSink(path) as sink:
        result, _ = run(sandbox, "head -c 100000 /dev/urandom | tee data.bin", tmp_path, log=sink)
    assert 0 == result.exit_code
    assert (tmp_path / "data.bin").read_bytes() == path.read_bytes()


class _CountingLog(MemoryLog):
    """A MemoryLog that counts the pieces it was given, and when each came."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[tuple[float, int]] = []

    def write(self, data: bytes) -> None:
        self.pieces.append((time.monotonic(), len(data)))
        super().write(data)


# pytest -q's progress: one character per test, each flushed (a write(2) of one byte).
_DOTS = (
    f"{sys.executable} -c 'import sys, time\n"
    "for _ in range(2000):\n"
    '    sys.stdout.write("."); sys.stdout.flush(); time.sleep(0.0002)\n\''
)


def test_output_written_a_byte_at_a_time_is_read_in_gathered_pieces(
    sandbox: LocalSandbox, tmp_path: Path
) -> None:
    log = _CountingLog()
    result, output = run(sandbox, _DOTS, tmp_path, log=log)
    assert (0, b"." * 2000) == (result.exit_code, output)
    if not sandbox_watches_exit():
        pytest.skip("no pidfd here: every read is made at once")
    # A piece per byte would be 2,000 log writes (masking, the file, a
    # timestamp, the viewers each) in the server while the step runs; after
    # a small read the pump lets output gather for GATHER seconds, so there is
    # at most about one piece per GATHER over the step's run (not a bound on
    # time: the pieces are counted over the time the step took, whatever it was).
    took = log.pieces[-1][0] - log.pieces[0][0]
    assert len(log.pieces) <= took / GATHER + 3, (len(log.pieces), took)


def test_a_large_writer_is_read_at_once_and_the_last_bytes_come_at_the_exit(
    sandbox: LocalSandbox, tmp_path: Path
) -> None:
    # Large reads are not held (the pipe never stays full), and a last small
    # piece written right before the exit is read at the exit, not lost.
    script = "head -c 3000000 /dev/zero; printf end; exit 3"
    log = _CountingLog()
    result, output = run(sandbox, script, tmp_path, log=log)
    assert 3 == result.exit_code
    assert b"\0" * 3000000 + b"end" == output
    assert sum(n for _, n in log.pieces) == len(output)


def sandbox_watches_exit() -> bool:
    """Whether this machine has pidfds (the pump watches the exit with one)."""
    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return False
    os.close(fd)
    return True


def test_environment_is_exactly_the_given_mapping(sandbox: LocalSandbox, tmp_path: Path) -> None:
    env = {"LANG": "C.UTF-8", "ONLY_THIS": "yes", "EMPTY": ""}
    script = "import json, os; print(json.dumps(dict(os.environ)))"
    result, output = run(sandbox, script, tmp_path, env=env, shell=(sys.executable, "-c"))
    assert 0 == result.exit_code
    seen = __import__("json").loads(output)
    expected = {"PATH": os.environ["PATH"], "SAUCI_TEST_MARK": seen["SAUCI_TEST_MARK"], **env}
    if sandbox.layout is None:  # the one variable added without cgroups
        expected[TOKEN_VARIABLE] = seen.get(TOKEN_VARIABLE, "<missing>")
    assert expected == seen


def test_environment_keeps_a_given_pwd(sandbox: LocalSandbox, tmp_path: Path) -> None:
    script = "import os; print(os.environ['PWD'])"
    env = {"LANG": "C.UTF-8", "PWD": "/given"}
    result, output = run(sandbox, script, tmp_path, env=env, shell=(sys.executable, "-c"))
    assert (0, b"/given\n") == (result.exit_code, output)


def test_stdin_is_closed(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, output = run(sandbox, "cat; echo cat returned $?", tmp_path, timeout=10)
    assert (0, None) == (result.exit_code, result.ended_by)
    assert b"cat returned 0\n" == output


def test_workdir(sandbox: LocalSandbox, tmp_path: Path) -> None:
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    result, output = run(sandbox, "pwd", tmp_path, workdir="sub/dir")
    assert 0 == result.exit_code
    assert f"{tmp_path}/sub/dir\n".encode() == output


@pytest.mark.parametrize(
    ("workdir", "reason"),
    [
        ("missing", "workdir 'missing' does not exist in the workspace"),
        ("../..", "workdir '../..' is outside the workspace"),
    ],
)
def test_bad_workdir_fails_the_step(
    sandbox: LocalSandbox, tmp_path: Path, workdir: str, reason: str
) -> None:
    result, output = run(sandbox, "pwd", tmp_path, workdir=workdir)
    assert (1, reason) == (result.exit_code, result.reason)
    assert f"sauci: error: {reason}\n".encode() == output


def test_missing_shell_fails_the_step(sandbox: LocalSandbox, tmp_path: Path) -> None:
    result, output = run(sandbox, "true", tmp_path, shell=("no-such-shell-sauci", "-c"))
    assert 127 == result.exit_code
    assert b"no-such-shell-sauci" in output


def test_concurrent_steps_do_not_disturb_each_other(sandbox: LocalSandbox, tmp_path: Path) -> None:
    results: list[tuple[StepResult, bytes]] = []

    def one(i: int) -> None:
        results.append(run(sandbox, f"sleep 1000 & echo {i}; exit {i}", tmp_path))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(PROMPTLY)
    assert [(0, b"0\n"), (1, b"1\n"), (2, b"2\n"), (3, b"3\n")] == sorted(
        (r.exit_code, out) for r, out in results
    )


def test_capabilities_follow_cgroups(sandbox: LocalSandbox) -> None:
    if sandbox.layout is None:
        assert frozenset() == sandbox.capabilities
    elif sandbox.layout.version == 1:  # pids, memory and cpu are mounted here
        assert {"limits.memory", "limits.processes", "limits.cpu"} == sandbox.capabilities
    else:  # v2 limits need controllers enabled for the server's cgroup
        assert sandbox.capabilities <= {"limits.memory", "limits.processes", "limits.cpu"}


def test_cancelled_before_start_starts_nothing(sandbox: LocalSandbox, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result, _ = run(sandbox, "touch started", tmp_path, cancel=cancel)
    assert (EndedBy.CANCELLED, "cancelled") == (result.ended_by, result.reason)
    assert not (tmp_path / "started").exists()


def test_unenforceable_limit_is_a_warning_in_the_build_log(tmp_path: Path) -> None:
    sandbox = LocalSandbox(use_cgroups=False)
    result, output = run(sandbox, "echo hi", tmp_path, limits=Limits(memory=512 * 1024 * 1024))
    assert 0 == result.exit_code
    expected = (
        b"sauci: warning: memory limit 512 MiB cannot be enforced "
        b"by the local sandbox without cgroups\nhi\n"
    )
    assert expected == output


def test_use_cgroups_true_without_cgroups_raises(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="cgroups were required"):
        LocalSandbox(use_cgroups=True, cgroup_root=tmp_path / "nothing-here")


# -- cgroup limits (skipped where cgroups cannot be created) -------------------


def _own_limit_script(controller: str, filename: str, want: object) -> str:
    """Print the step's own cgroup file, once it shows ``want`` (at most ~10 s).

    Right after the start pids.max is one higher, while the starting thread
    is still counted in the cgroup; it is lowered a moment later.
    """
    path = (
        f"/sys/fs/cgroup/{controller}"
        f"$(grep -E '^[0-9]+:([^:]*,)?{controller}(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)"
        f"/{filename}"
    )
    return (
        f"for i in $(seq 100); do v=$(cat {path}); "
        f'[ "$v" = "{want}" ] && break; sleep 0.1; done; echo "$v"'
    )


def test_limits_are_written_to_the_step_cgroup(
    cgroup_sandbox: LocalSandbox, tmp_path: Path
) -> None:
    if cgroup_sandbox.layout is None or cgroup_sandbox.layout.version != 1:
        pytest.skip("checks cgroup v1 files")
    limits = Limits(memory=256 * 1024 * 1024, processes=77, cpu=0.5)
    expected = [str(256 * 1024 * 1024), "77", "50000"]
    script = "; ".join(
        _own_limit_script(c, f, want)
        for (c, f), want in zip(
            (
                ("memory", "memory.limit_in_bytes"),
                ("pids", "pids.max"),
                ("cpu", "cpu.cfs_quota_us"),
            ),
            expected,
            strict=True,
        )
    )
    result, output = run(cgroup_sandbox, script, tmp_path, limits=limits)
    assert 0 == result.exit_code, output
    assert expected == output.decode().split()


def test_default_process_limit_applies(cgroup_sandbox: LocalSandbox, tmp_path: Path) -> None:
    if cgroup_sandbox.layout is None or cgroup_sandbox.layout.version != 1:
        pytest.skip("checks cgroup v1 files")
    _, output = run(cgroup_sandbox, _own_limit_script("pids", "pids.max", 512), tmp_path)
    assert b"512\n" == output


def test_memory_hog_is_out_of_memory(cgroup_sandbox: LocalSandbox, tmp_path: Path) -> None:
    hog = f"{sys.executable} -c 'b = b\"x\" * (1 << 30); print(len(b))'"
    result, _ = run(cgroup_sandbox, hog, tmp_path, limits=Limits(memory=128 * 1024 * 1024))
    assert EndedBy.OUT_OF_MEMORY == result.ended_by
    assert "out of memory at 128 MiB limit" == result.reason
    assert not result.ok


def test_fork_bomb_is_contained(cgroup_sandbox: LocalSandbox, tmp_path: Path) -> None:
    # Only ever with a pids cgroup: without one a fork bomb takes the machine down.
    if "limits.processes" not in cgroup_sandbox.capabilities:
        pytest.skip("no pids cgroup controller: a fork bomb cannot be contained")
    outcome: list[StepResult] = []
    bomb = threading.Thread(
        target=lambda: outcome.append(
            run(
                cgroup_sandbox,
                ":(){ :|:& };:; sleep 1000",
                tmp_path,
                timeout=3,
                limits=Limits(processes=50),
                log=_DropLog(),
            )[0]
        )
    )
    bomb.start()
    time.sleep(1)
    started = time.monotonic()
    subprocess.run(["true"], check=True, timeout=PROMPTLY)  # the host still works
    assert time.monotonic() - started < 5
    bomb.join(PROMPTLY * 2)
    assert not bomb.is_alive()
    [result] = outcome
    assert EndedBy.PROCESS_LIMIT == result.ended_by
    assert result.reason is not None
    assert result.reason.startswith("process limit of 50 reached")


FORK_UNTIL_REFUSED = """
import os, sys, time
time.sleep(0.3)  # until the starting thread has left the cgroup (it counts as one)
children = []
for _ in range(10):
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        time.sleep(0.3)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(len(children))
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize(
    ("code", "ended_by"), [(0, None), (1, EndedBy.PROCESS_LIMIT)], ids=["passes", "fails"]
)
def test_process_limit_is_blamed_only_for_a_failed_step(
    cgroup_sandbox: LocalSandbox, tmp_path: Path, code: int, ended_by: EndedBy | None
) -> None:
    if "limits.processes" not in cgroup_sandbox.capabilities:
        pytest.skip("no pids cgroup controller")
    script = f"{sys.executable} -c '{FORK_UNTIL_REFUSED}' {code}"
    result, output = run(cgroup_sandbox, script, tmp_path, limits=Limits(processes=3))
    assert b"2\n" == output  # main + 2 children; the third fork was refused
    assert (code, ended_by) == (result.exit_code, result.ended_by)


def test_sweep_ends_leftover_cgroups(cgroup_sandbox: LocalSandbox) -> None:
    layout = cgroup_sandbox.layout
    assert layout is not None
    prefix = f"{PREFIX}sweep-"
    cg = _proctree.StepCgroup.create(layout, _proctree.cgroup_name(prefix, "crashed"))
    proc = cg.spawn(["sleep", "1000"], lambda argv, pre: subprocess.Popen(argv, preexec_fn=pre))
    try:
        assert [proc.pid] == cg.pids()
        assert [cg.name] == sweep(prefix, layout=layout)
        assert -9 == proc.wait(PROMPTLY)
        assert all(not d.exists() for d in cg.dirs.values())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cg.remove()


def test_missing_cgroups_are_logged_once(tmp_path: Path) -> None:
    from sauci.sandbox import local
    from sauci.testing.logs import capture_logs

    local._warn_cgroups_unavailable.cache_clear()
    with capture_logs() as logs:
        first = LocalSandbox(cgroup_root=tmp_path)
        second = LocalSandbox(cgroup_root=tmp_path)
    assert frozenset() == first.capabilities == second.capabilities
    assert ["cgroups_unavailable"] == [e["event"] for e in logs]
    result, output = run(first, "echo fine", tmp_path)
    assert (0, b"fine\n") == (result.exit_code, output)
