"""A pushed pipeline may lower a step's process limit, never lift it past the
server's ``max_step_processes``: `limits: {processes: 100000}` would have
lifted the fork-bomb cap of every sandbox (their default is 512)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sauci import Status, parse_pipeline
from sauci.app import LocalRunner
from sauci.core.config import Settings, load_settings
from sauci.core.models import BuildRequest
from sauci.sandbox.local import LocalSandbox
from sauci.storage.memory import MemoryStore

PUSHED = "steps:\n  s:\n    run: 'echo ran'\n    limits: {processes: 100000}\n"
LOWER = "steps:\n  s:\n    run: 'echo ran'\n    limits: {processes: 10}\n"


class Recording:
    """A sandbox that says it enforces process limits, and records the one it is given."""

    capabilities = frozenset({"limits.processes"})

    def __init__(self) -> None:
        self.inner = LocalSandbox(use_cgroups=False)
        self.seen: list[int | None] = []

    def run(self, step: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(step.limits.processes)
        return self.inner.run(step, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _run(text: str, tmp_path: Path, **settings: Any) -> tuple[Recording, Any]:
    sandbox = Recording()
    runner = LocalRunner(
        store=MemoryStore(),
        settings=Settings(data_dir=tmp_path / "data", **settings),
        secrets={},
        sandbox=sandbox,  # type: ignore[arg-type]
    )
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    outcome = runner.run_pipeline(parse_pipeline(text, ".sauci.yml"), ws, BuildRequest(repo="r"))
    return sandbox, outcome


def test_a_pushed_process_limit_above_the_server_s_maximum_is_lowered_and_said(
    tmp_path: Path,
) -> None:
    sandbox, outcome = _run(PUSHED, tmp_path, max_step_processes=64)
    assert sandbox.seen == [64]
    step = outcome.step("s")
    assert step.status is Status.PASSED
    log = Path(step.log_path).read_text()
    assert "limits: processes 100000 is more than this server allows" in log
    assert "max_step_processes 64" in log


def test_the_default_maximum_holds_without_a_setting(tmp_path: Path) -> None:
    sandbox, _ = _run(PUSHED, tmp_path)
    assert sandbox.seen == [4096]


def test_a_lower_limit_is_kept_as_asked(tmp_path: Path) -> None:
    sandbox, outcome = _run(LOWER, tmp_path, max_step_processes=64)
    assert sandbox.seen == [10]
    assert "max_step_processes" not in Path(outcome.step("s").log_path).read_text()


def test_the_maximum_is_a_setting() -> None:
    assert load_settings({"max_step_processes": "128"}).max_step_processes == 128
