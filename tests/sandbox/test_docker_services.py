"""``services:`` in DockerSandbox against a private dockerd with the busybox image."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import EndedBy, Step, StepResult
from sauci.core.step_parts import Service
from sauci.exceptions import SandboxError
from sauci.sandbox.capabilities import check_capabilities
from sauci.testing.sandbox import MemoryLog

OWNER = "sauci-test-svc"
LABEL = "b9-services"
HTTPD = Service(
    name="web",
    image="sauci-test/busybox:latest",
    command=(
        "sh",
        "-c",
        "mkdir -p /www && echo hello > /www/index.html && echo started && "
        "exec httpd -f -p 8080 -h /www",
    ),
    ready="wget -q -O- http://127.0.0.1:8080/",
    ready_timeout=20.0,
)


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    yield sandbox
    try:
        # Nothing of the step may be left, whatever the outcome.
        assert [] == sandbox.api.containers(all=True, filters={"label": f"sauci.owner={OWNER}"})
    finally:
        sandbox.sweep(OWNER)
        sandbox.close()


def run(
    sandbox: Any, step: Step, workspace: Path, cancel: threading.Event | None = None
) -> tuple[StepResult, bytes]:
    log = MemoryLog()
    result = sandbox.run(
        step,
        workspace,
        log,
        env={"PATH": "/bin"},
        cancel=cancel or threading.Event(),
        label=LABEL,
    )
    return result, bytes(log.data)


def test_job_reaches_the_service_on_localhost(sandbox: Any, tmp_path: Path) -> None:
    step = Step(
        name="t",
        run="wget -q -O- http://127.0.0.1:8080/; echo host=$SAUCI_SERVICE_WEB_HOST",
        shell=("sh", "-c"),
        services=[HTTPD],
    )
    result, output = run(sandbox, step, tmp_path)
    assert 0 == result.exit_code, output
    assert output.startswith(b"hello\nhost=127.0.0.1\n"), output
    # The service's own output follows under a header.
    assert b"\n--- service 'web' (sauci-test/busybox:latest) output ---\nstarted\n" in output


def test_second_service_shares_the_namespace(sandbox: Any, tmp_path: Path) -> None:
    other = Service(
        name="other",
        image="sauci-test/busybox:latest",
        command=(
            "sh",
            "-c",
            "mkdir -p /o && echo two > /o/index.html && exec httpd -f -p 8081 -h /o",
        ),
        ready="wget -q -O- http://127.0.0.1:8081/",
        ready_timeout=20.0,
    )
    step = Step(
        name="t",
        run="wget -q -O- http://127.0.0.1:8080/ http://127.0.0.1:8081/ -O-; env | grep SERVICE | sort",
        shell=("sh", "-c"),
        services=[HTTPD, other],
    )
    result, output = run(sandbox, step, tmp_path)
    assert 0 == result.exit_code, output
    assert output.startswith(
        b"hello\ntwo\nSAUCI_SERVICE_OTHER_HOST=127.0.0.1\nSAUCI_SERVICE_WEB_HOST=127.0.0.1\n"
    ), output


def test_failing_step_still_removes_services(sandbox: Any, tmp_path: Path) -> None:
    step = Step(name="t", run="exit 3", shell=("sh", "-c"), services=[HTTPD])
    result, _ = run(sandbox, step, tmp_path)
    assert 3 == result.exit_code


def test_service_never_ready_ends_the_step_with_the_reason(sandbox: Any, tmp_path: Path) -> None:
    never = Service(
        name="cache",
        image="sauci-test/busybox:latest",
        command=("sh", "-c", "echo waiting; exec sleep 1000"),
        ready="false",
        ready_timeout=1.0,
    )
    step = Step(name="t", run="echo should-not-run", shell=("sh", "-c"), services=[never])
    log = MemoryLog()
    began = time.monotonic()
    with pytest.raises(SandboxError, match=r"^service 'cache' not ready after 1 s$"):
        sandbox.run(step, tmp_path, log, env={}, cancel=threading.Event(), label=LABEL)
    assert time.monotonic() - began < 15
    assert b"should-not-run" not in log.data
    assert b"--- service 'cache' (sauci-test/busybox:latest) output ---\nwaiting\n" in log.data


def test_service_that_exits_is_reported_at_once(sandbox: Any, tmp_path: Path) -> None:
    dead = Service(
        name="dead",
        image="sauci-test/busybox:latest",
        command=("sh", "-c", "exit 7"),
        ready="true",
        ready_timeout=60.0,
    )
    step = Step(name="t", run="true", shell=("sh", "-c"), services=[dead])
    began = time.monotonic()
    with pytest.raises(
        SandboxError, match=r"service 'dead' exited with code 7 before it was ready"
    ):
        run(sandbox, step, tmp_path)
    assert time.monotonic() - began < 30


def test_cancel_during_the_wait_removes_the_service(sandbox: Any, tmp_path: Path) -> None:
    slow = Service(
        name="slow",
        image="sauci-test/busybox:latest",
        command=("sleep", "1000"),
        ready="false",
        ready_timeout=120.0,
    )
    step = Step(name="t", run="true", shell=("sh", "-c"), services=[slow])
    cancel = threading.Event()
    seen: list[int] = []

    def cancel_once_running() -> None:
        flt = {"label": [f"sauci.owner={OWNER}", "sauci.service=slow"]}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = sandbox.api.containers(filters=flt)
            if found:
                seen.append(len(found))
                break
            time.sleep(0.1)
        cancel.set()

    helper = threading.Thread(target=cancel_once_running)
    helper.start()
    began = time.monotonic()
    result, _ = run(sandbox, step, tmp_path, cancel)
    helper.join()
    assert [1] == seen
    assert (None, EndedBy.CANCELLED) == (result.exit_code, result.ended_by)
    assert time.monotonic() - began < 60


def test_service_labels(sandbox: Any, tmp_path: Path) -> None:
    step = Step(name="t", run="sleep 30", shell=("sh", "-c"), services=[HTTPD])
    cancel = threading.Event()
    labels: list[dict[str, str]] = []

    def look() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(labels) < 2:
            found = sandbox.api.containers(filters={"label": f"sauci.owner={OWNER}"})
            if len(found) == 2:
                labels.extend(c["Labels"] for c in found)
            time.sleep(0.1)
        cancel.set()

    helper = threading.Thread(target=look)
    helper.start()
    result, _ = run(sandbox, step, tmp_path, cancel)
    helper.join()
    assert EndedBy.CANCELLED is result.ended_by
    service = [lbl for lbl in labels if "sauci.service" in lbl]
    assert 1 == len(service), labels
    assert {"sauci.build": "9", "sauci.step": "t", "sauci.service": "web"}.items() <= service[
        0
    ].items()


def test_sweep_removes_services(sandbox: Any, busybox_image: str) -> None:
    made = sandbox.api.create_container(
        busybox_image,
        command=["sleep", "1000"],
        labels={"sauci.owner": OWNER, "sauci.service": "cache"},
        name="sauci-test-svc-left",
    )
    sandbox.api.start(made["Id"])
    assert ["sauci-test-svc-left"] == sandbox.sweep(OWNER)


def test_service_log_is_capped(sandbox: Any, tmp_path: Path) -> None:
    from sauci.sandbox.docker import SERVICE_LOG_TAIL

    chatty = Service(
        name="chatty",
        image="sauci-test/busybox:latest",
        command=(
            "sh",
            "-c",
            "yes 0123456789abcdef | head -c 300000; echo; echo END; exec sleep 1000",
        ),
        ready="true",
    )
    step = Step(name="t", run="sleep 1", shell=("sh", "-c"), services=[chatty])
    result, output = run(sandbox, step, tmp_path)
    assert 0 == result.exit_code
    _, _, tail = output.partition(b"--- service 'chatty' (sauci-test/busybox:latest) output")
    assert tail.startswith(b", last 64 KiB ---\n"), tail[:80]
    assert tail.endswith(b"END\n")
    assert len(tail) <= SERVICE_LOG_TAIL + 100


def test_other_sandboxes_report_services_as_a_problem() -> None:
    from sauci.sandbox.local import LocalSandbox

    step = Step(name="t", run="true", services=[Service(name="cache", image="redis")])
    assert [
        "step 't' asks for services ('cache'), but LocalSandbox cannot run services"
    ] == check_capabilities(step, LocalSandbox())
    assert [] == check_capabilities(Step(name="t", run="true"), LocalSandbox())
