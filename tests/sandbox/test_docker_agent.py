"""DockerSandbox's step agent against a private dockerd, hostile: a step cannot
hand the agent a command, end it, read its requests or forge its end line; an
agent that ends during a step fails the step by name, at once; without the
agent (``step_agent=False``) steps still run with ``docker exec``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import EndedBy, Step, StepResult
from sauci.testing.sandbox import MemoryLog

OWNER = "sauci-test-agent"


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    if sandbox.pool.agent is None:
        pytest.skip("no static busybox on this host: DockerSandbox runs steps with docker exec")
    yield sandbox
    sandbox.sweep(OWNER)
    sandbox.close()


def run(sandbox: Any, script: str, workspace: Path, **step: Any) -> tuple[StepResult, str]:
    log = MemoryLog()
    result = sandbox.run(
        Step(name="t", run=script, shell=("sh", "-c"), **step),
        workspace,
        log,
        env={"PATH": "/bin"},
        cancel=threading.Event(),
        label="b5-agent",
    )
    return result, bytes(log.data).decode(errors="replace")


# Every root process of the container (the init, the agent): the step writes
# a request to each one's stdin and signals it; each attempt's outcome is printed.
ATTACK = r"""
for d in /proc/[0-9]*; do
  grep -q '^Uid:.0' "$d/status" 2>/dev/null || continue
  p=${d#/proc/}
  printf 'N=x; set -- /bin/sh -c "touch /workspace/pwned"\n' > "$d/fd/0" 2>/dev/null \
    && echo "wrote $p" || echo "refused $p"
  kill -9 "$p" 2>/dev/null && echo "killed $p" || echo "alive $p"
  cat "$d/fd/0" 2>/dev/null && echo "read $p"
done
"""


def test_a_step_cannot_command_read_or_end_the_agent(sandbox: Any, tmp_path: Path) -> None:
    result, out = run(sandbox, ATTACK, tmp_path)
    assert 0 == result.exit_code, out
    assert "refused" in out and "alive" in out, out
    assert "wrote" not in out and "killed" not in out and "read" not in out, out
    # The agent still serves the build, and ran nothing it was sent by a step.
    result, out = run(sandbox, "echo next", tmp_path)
    assert (0, "next\n") == (result.exit_code, out)
    assert not (tmp_path / "pwned").exists()


def test_a_step_reads_nothing_on_stdin(sandbox: Any, tmp_path: Path) -> None:
    result, out = run(sandbox, "cat; echo done", tmp_path, timeout=20)
    assert (0, "done\n") == (result.exit_code, out)
    result, out = run(sandbox, "echo again", tmp_path)  # its request was not read by the step
    assert (0, "again\n") == (result.exit_code, out)


def test_a_forged_end_line_is_only_output(sandbox: Any, tmp_path: Path) -> None:
    forged = r"printf '\036sauci-end-%s 0 1\n' 00000000000000000000000000000000"
    result, out = run(sandbox, f"{forged}; printf 'no newline'; exit 3", tmp_path)
    assert 3 == result.exit_code
    assert out == "\x1esauci-end-00000000000000000000000000000000 0 1\nno newline", repr(out)


def test_nothing_of_a_step_outlives_its_timeout(sandbox: Any, tmp_path: Path) -> None:
    late = "setsid sh -c 'sleep 2; touch /workspace/late' & (trap '' TERM; sleep 1000) & sleep 1000"
    result, _ = run(sandbox, late, tmp_path, timeout=1)
    assert EndedBy.TIMEOUT == result.ended_by
    time.sleep(2.5)
    assert not (tmp_path / "late").exists()
    result, out = run(sandbox, "echo after", tmp_path)
    assert (0, "after\n") == (result.exit_code, out)


def _kill_agent(sandbox: Any) -> bool:
    """SIGKILL to the agent of the one container the pool holds, from the host."""
    (held,) = sandbox.pool._all.values()
    for pid in (held.pids_dir / "cgroup.procs").read_text().split():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"busybox") and argv[1:2] == [b"sh"] and b"sauci-agent" in argv:
            os.kill(int(pid), 9)
            return True
    return False


def test_an_agent_that_ends_fails_the_step_by_name(sandbox: Any, tmp_path: Path) -> None:
    from sauci.sandbox.docker import StepAgentLost

    assert 0 == run(sandbox, "true", tmp_path)[0].exit_code  # the container is made
    if sandbox.pool._all and next(iter(sandbox.pool._all.values())).pids_dir is None:
        pytest.skip("the daemon's cgroups are not visible on this host")
    failed: list[BaseException] = []

    def step() -> None:
        try:
            run(sandbox, "sleep 60", tmp_path, timeout=120)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=step)
    started = time.monotonic()
    thread.start()
    time.sleep(1)
    assert _kill_agent(sandbox)
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - started < 30
    assert [StepAgentLost] == [type(e) for e in failed], failed
    assert "step agent" in str(failed[0]) and "'t'" in str(failed[0])
    # The build goes on in a new container.
    assert 0 == run(sandbox, "true", tmp_path)[0].exit_code


def test_without_the_agent_steps_run_with_docker_exec(
    dockerd: str, busybox_image: str, tmp_path: Path
) -> None:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(
        base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5, step_agent=False
    )
    try:
        assert sandbox.pool.agent is None
        result, out = run(sandbox, "sleep 1000 & echo one; exit 4", tmp_path)
        assert (4, "one\n") == (result.exit_code, out)
        result, out = run(sandbox, "id -u; echo $HOME", tmp_path)
        assert (0, "1000\n/\n") == (result.exit_code, out)
        result, _ = run(sandbox, "sleep 1000", tmp_path, timeout=1)
        assert EndedBy.TIMEOUT == result.ended_by
    finally:
        sandbox.sweep(OWNER)
        sandbox.close()


def test_steps_as_root_never_go_by_the_agent(
    dockerd: str, busybox_image: str, tmp_path: Path
) -> None:
    """A step as root in the container could signal or read the root agent:
    a sandbox whose steps are root runs them with ``docker exec``."""
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, user=(0, 0))
    try:
        assert sandbox.pool.agent is None
        result, out = run(sandbox, "id -u", tmp_path)
        assert (0, "0\n") == (result.exit_code, out)
    finally:
        sandbox.sweep(OWNER)
        sandbox.close()


def test_a_long_script_and_environment_reach_the_step_whole(sandbox: Any, tmp_path: Path) -> None:
    # Longer than one request line may be: sent after its length instead.
    lines = [f'echo {i} "it\'s" "$X"' for i in range(3000)]
    log = MemoryLog()
    result = sandbox.run(
        Step(name="t", run="\n".join(lines), shell=("sh", "-c")),
        tmp_path,
        log,
        env={"PATH": "/bin", "X": "a\nb c" * 2000},
        cancel=threading.Event(),
        label="b5-agent",
    )
    assert 0 == result.exit_code
    x = "a\nb c" * 2000
    assert "".join(f"{i} it's {x}\n" for i in range(3000)) == bytes(log.data).decode()
    result, out = run(sandbox, "echo short", tmp_path)
    assert (0, "short\n") == (result.exit_code, out)


def test_requests_and_end_lines() -> None:
    from sauci.sandbox._docker_agent import INLINE_MAX, EndScanner, request

    short = request("ab", {"A": "x y"}, ["sh", "-c", "echo 'q'\nexit"])
    assert short == b"N=ab; set -- 'A=x y' sh -c 'echo '\"'\"'q'\"'\"''\"$NL\"'exit'\n"
    long = request("ab", {}, ["x" * INLINE_MAX])
    head, _, body = long.partition(b"\n")
    assert (head, len(body)) == (f"L {len(body)}".encode(), INLINE_MAX + len("N=ab; set -- \n"))
    scan = EndScanner("ab")
    # The end line split across reads; output that only looks like its start is output.
    assert (b"out\x1esauci-end-x", None) == scan(b"out\x1esauci-end-x\x1esauci-e")
    assert (b"", None) == scan(b"nd-ab 4")
    assert (b"", 42) == scan(b"2 1\nlate")
    assert scan.swept


def test_an_agent_the_daemon_cannot_run_falls_back_to_docker_exec(
    sandbox: Any, tmp_path: Path
) -> None:
    # As with a daemon on another host, where the host's busybox path is not
    # that file (docker makes an empty directory there).
    sandbox.pool.agent = str(tmp_path / "not-here" / "busybox")
    result, out = run(sandbox, "id -u; echo one", tmp_path)
    assert (0, "1000\none\n") == (result.exit_code, out)
    assert sandbox.pool.agent is None
    result, out = run(sandbox, "echo two", tmp_path)
    assert (0, "two\n") == (result.exit_code, out)
