"""DockerSandbox's containers kept for a build: reused by the next step, never
handing it what the last one left (processes, /tmp, a limit hit, a dead
container), one per image, removed when the build ends (also through the
executor, when a step failed or was cancelled) and swept by label after a
crash."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from sauci import Settings, run_pipeline
from sauci.core.models import EndedBy, Limits, Step, StepResult
from sauci.core.pipeline import parse_pipeline
from sauci.testing.sandbox import MemoryLog

OWNER = "sauci-test-pool"
# The container's id, as its hostname; and how many sleeps the step's uid runs.
WHO = "cat /etc/hostname"
OTHERS = (
    'for f in /proc/[0-9]*/status; do grep -q "^Name:.sleep" "$f" && '
    'grep -q "^Uid:.1000" "$f" && echo "$f"; done 2>/dev/null | wc -l'
)


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(
        base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5, tmp_size=8 << 20
    )
    yield sandbox
    sandbox.sweep(OWNER)
    sandbox.close()


def run(
    sandbox: Any, script: str, workspace: Path, *, label: str = "b9-pool", **step: Any
) -> tuple[StepResult, str]:
    log = MemoryLog()
    cancel = step.pop("cancel", None) or threading.Event()
    result = sandbox.run(
        Step(name="t", run=script, shell=("sh", "-c"), **step),
        workspace,
        log,
        env={"PATH": "/bin"},
        cancel=cancel,
        label=label,
    )
    return result, bytes(log.data).decode()


def containers(sandbox: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sandbox.api.containers(
        all=True, filters={"label": f"sauci.owner={OWNER}"}
    )
    return found


def test_steps_of_a_build_share_a_container(sandbox: Any, tmp_path: Path) -> None:
    first = run(sandbox, WHO, tmp_path)[1]
    assert first == run(sandbox, WHO, tmp_path)[1]
    assert first != run(sandbox, WHO, tmp_path, label="b10-pool")[1]  # another build
    assert first != run(sandbox, WHO, tmp_path, limits=Limits(processes=100))[1]
    assert 3 == len(containers(sandbox))


def test_background_processes_do_not_reach_the_next_step(sandbox: Any, tmp_path: Path) -> None:
    script = "sleep 1000 & setsid sleep 1000 & ( (sleep 1000 &) & ); (trap '' TERM; sleep 1000) &"
    result, _ = run(sandbox, script + " echo left", tmp_path)
    assert 0 == result.exit_code
    result, out = run(sandbox, f"{WHO}; {OTHERS}", tmp_path)
    assert 0 == result.exit_code
    assert out.endswith("\n0\n"), out  # nothing of the step before still runs
    assert 1 == len(containers(sandbox))  # and the container was kept


def test_a_full_tmp_is_emptied_for_the_next_step(sandbox: Any, tmp_path: Path) -> None:
    fill = (
        "mkdir /tmp/d && touch /tmp/d/f && chmod 000 /tmp/d; "
        "dd if=/dev/zero of=/tmp/big bs=1M count=20; touch /tmp/.dot /var/tmp/v /dev/shm/s"
    )
    result, out = run(sandbox, fill, tmp_path)
    assert "No space left on device" in out  # at 8 MiB
    result, out = run(sandbox, "echo ok > /tmp/small && ls -A /tmp /var/tmp /dev/shm", tmp_path)
    listed = out.replace(".sauci-step\n", "")
    assert (0, "/dev/shm:\n\n/tmp:\nsmall\n\n/var/tmp:\n") == (result.exit_code, listed)


def test_a_step_cannot_end_its_container(sandbox: Any, tmp_path: Path) -> None:
    before = run(sandbox, WHO, tmp_path)[1]
    result, out = run(sandbox, "kill -9 1; kill -9 -1; echo ran", tmp_path)
    # stderr and stdout come through two pipes: their lines may interleave either way
    assert "Operation not permitted" in out and "ran" in out.splitlines()
    assert (0, None) == (result.exit_code, result.signal)  # killed nothing it did not own
    assert before == run(sandbox, WHO, tmp_path)[1]  # and its container is still good


def test_a_container_stopped_between_steps_is_replaced(sandbox: Any, tmp_path: Path) -> None:
    run(sandbox, "true", tmp_path)
    (held,) = containers(sandbox)
    sandbox.api.kill(held["Id"])  # pid 1 killed from outside
    result, out = run(sandbox, "echo fine", tmp_path)
    assert (0, "fine\n") == (result.exit_code, out)
    assert held["Id"] not in {c["Id"] for c in containers(sandbox) if c["State"] == "running"}


@pytest.mark.parametrize(
    ("script", "limits", "ended_by"),
    [
        (
            "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#x}",
            Limits(memory=64 << 20),
            EndedBy.OUT_OF_MEMORY,
        ),
        ("b() { b | b & }; b; sleep 2; exit 1", Limits(processes=64), EndedBy.PROCESS_LIMIT),
    ],
    ids=["memory-hog", "fork-bomb"],
)
def test_a_step_at_its_limit_leaves_no_broken_container(
    sandbox: Any, tmp_path: Path, script: str, limits: Limits, ended_by: EndedBy
) -> None:
    before = run(sandbox, WHO, tmp_path, limits=limits)[1]
    result, _ = run(sandbox, script, tmp_path, limits=limits, timeout=30)
    assert ended_by is result.ended_by
    result, out = run(sandbox, f"{WHO}; {OTHERS}", tmp_path, limits=limits)
    assert 0 == result.exit_code and result.ended_by is None, out
    assert before not in out and out.endswith("\n0\n")  # a new container, clean


def test_timeout_and_cancel_replace_the_container(sandbox: Any, tmp_path: Path) -> None:
    result, _ = run(sandbox, "sleep 1000", tmp_path, timeout=0.5)
    assert EndedBy.TIMEOUT is result.ended_by
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    result, _ = run(sandbox, "setsid sleep 1000 & sleep 1000", tmp_path, cancel=cancel)
    assert EndedBy.CANCELLED is result.ended_by
    assert [] == containers(sandbox)  # each was removed at its step's end
    result, out = run(sandbox, OTHERS, tmp_path)
    assert (0, "0\n") == (result.exit_code, out)


def test_each_image_has_its_container(
    sandbox: Any, tmp_path: Path, debian_image: str, busybox_image: str
) -> None:
    busybox = run(sandbox, WHO, tmp_path)[1]
    debian = run(sandbox, WHO, tmp_path, image=debian_image)[1]
    assert busybox != debian
    assert debian == run(sandbox, WHO, tmp_path, image=debian_image)[1]
    assert {busybox_image, debian_image} == {c["Image"] for c in containers(sandbox)}


def test_steps_at_the_same_time_get_a_container_each(sandbox: Any, tmp_path: Path) -> None:
    outs: list[str] = []
    threads = [
        threading.Thread(target=lambda: outs.append(run(sandbox, f"{WHO}; sleep 1", tmp_path)[1]))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 2 == len(set(outs))


PIPELINE = """\
steps:
  a:
    shell: [sh, -c]
    run: echo a
  b:
    needs: [a]
    shell: [sh, -c]
    run: sleep 1000 & exit 3
  c:
    needs: [a]
    shell: [sh, -c]
    run: sleep 1000
    timeout: 1
  m:
    name: m${{ matrix.n }}
    needs: [a]
    shell: [sh, -c]
    run: echo ${{ matrix.n }}
    matrix:
      n: [1, 2]
"""


def test_the_build_end_removes_its_containers(sandbox: Any, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outcome = run_pipeline(
        parse_pipeline(PIPELINE),
        ws,
        sandbox=sandbox,
        settings=Settings(data_dir=tmp_path / "data"),
        repo="demo",
        ref="refs/heads/main",
    )
    assert ["passed", "failed", "failed", "passed", "passed"] == [s.status for s in outcome.steps]
    assert [] == containers(sandbox)


def test_a_new_sandbox_sweeps_what_a_crashed_one_kept(
    sandbox: Any, dockerd: str, busybox_image: str, tmp_path: Path
) -> None:
    from sauci.sandbox.docker import DockerSandbox

    run(sandbox, "true", tmp_path)  # kept for build 9, which never ends here
    (kept,) = containers(sandbox)
    assert ("9", "1") == (kept["Labels"]["sauci.build"], kept["Labels"]["sauci.pool"])
    restarted = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER)
    try:
        assert [kept["Names"][0].lstrip("/")] == restarted.sweep()
    finally:
        restarted.close()
    assert [] == containers(sandbox)


def test_an_image_entrypoint_and_a_step_path_do_not_get_in_the_way(
    sandbox: Any, tmp_path: Path, busybox_image: str
) -> None:
    api = sandbox.api
    base = api.create_container(busybox_image, ["true"])["Id"]
    try:
        api.commit(base, "sauci-test/entrypoint", "latest", changes=['ENTRYPOINT ["/bin/false"]'])
    finally:
        api.remove_container(base, force=True)
    log = MemoryLog()
    step = Step(
        name="t",
        run="echo x > /tmp/left; echo ran",
        shell=("/bin/sh", "-c"),
        image="sauci-test/entrypoint:latest",
    )
    for _ in range(2):  # the second step must find /tmp emptied without /bin on PATH
        result = sandbox.run(
            step, tmp_path, log, env={"PATH": "/nowhere"}, cancel=threading.Event(), label="b9-e"
        )
        assert 0 == result.exit_code, bytes(log.data)
    assert b"ran\nran\n" == bytes(log.data)
    result = sandbox.run(
        attrs.evolve(step, run="test ! -e /tmp/left"),
        tmp_path,
        log,
        env={"PATH": "/nowhere"},
        cancel=threading.Event(),
        label="b9-e",
    )
    assert 0 == result.exit_code
    assert 1 == len(containers(sandbox))


@pytest.mark.parametrize("host_sees", [True, False], ids=["local-cgroup", "remote-daemon"])
def test_what_a_step_left_running_is_killed_before_its_result(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_sees: bool
) -> None:
    import sauci.sandbox._docker_exec as docker_exec

    if not host_sees:  # a daemon on another host: no cgroup to look at
        monkeypatch.setattr(docker_exec, "left_running", lambda held: None)
    script = "sleep 1001 >/dev/null 2>&1 & setsid sleep 1002 >/dev/null 2>&1 & echo ok"
    result, out = run(sandbox, script, tmp_path)
    assert (0, "ok\n") == (result.exit_code, out)
    (held,) = containers(sandbox)
    top = sandbox.api.top(held["Id"])
    commands = [row[-1] for row in top["Processes"]]
    assert not [c for c in commands if "sleep 100" in c], commands
