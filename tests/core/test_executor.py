"""The executor's rules: DAG order, skipping, retries, allow_failure, fail-fast, cancel, env."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sauci import Limits, Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings
from sauci.core.executor import BuildObserver, step_env
from sauci.core.models import Build, EndedBy
from sauci.storage.memory import MemoryStore


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", grace=1.0)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def run(steps, workspace, settings, **kw):
    return run_pipeline(Pipeline(steps=steps), workspace, settings=settings, secrets={}, **kw)


def test_default_needs_follow_file_order(workspace, settings):
    """Without needs, each step waits for the one before it: their output order proves it."""
    steps = [Step(name=f"s{i}", run=f"echo s{i} >> order.txt") for i in range(5)]
    outcome = run(steps, workspace, settings)
    assert outcome.status is Status.PASSED
    assert (workspace / "order.txt").read_text().split() == ["s0", "s1", "s2", "s3", "s4"]
    assert [s.needs for s in outcome.steps] == [(), ("s0",), ("s1",), ("s2",), ("s3",)]


def test_independent_steps_run_in_parallel(workspace, settings):
    """Two steps with needs: [] overlap in time: each waits for the other's marker file."""
    steps = [
        Step(
            name="a",
            run="touch a.started; for i in $(seq 100); do [ -e b.started ] && exit 0; sleep 0.05; done; exit 1",
            needs=[],
        ),
        Step(
            name="b",
            run="touch b.started; for i in $(seq 100); do [ -e a.started ] && exit 0; sleep 0.05; done; exit 1",
            needs=[],
        ),
    ]
    outcome = run(steps, workspace, settings)
    assert [s.status for s in outcome.steps] == [Status.PASSED, Status.PASSED]


def test_jobs_bound_parallelism(workspace, tmp_path):
    """With jobs=1 the steps never overlap, even when none needs another."""
    settings = Settings(data_dir=tmp_path / "d", jobs=1)
    script = "[ -e busy ] && exit 1; touch busy; sleep 0.1; rm busy"
    steps = [Step(name=f"s{i}", run=script, needs=[]) for i in range(4)]
    outcome = run(steps, workspace, settings)
    assert outcome.status is Status.PASSED


def test_failed_need_skips_dependents_with_reason(workspace, settings):
    steps = [
        Step(name="build", run="exit 3"),
        Step(name="test", run="true"),
        Step(name="deploy", run="true"),
        Step(name="other", run="true", needs=[]),
    ]
    outcome = run(steps, workspace, settings)
    by = {s.name: s for s in outcome.steps}
    assert by["build"].status is Status.FAILED
    assert by["build"].exit_code == 3
    assert by["build"].reason == "exit code 3"
    assert by["test"].status is Status.SKIPPED
    assert by["test"].reason == "skipped: needs 'build', which failed"
    assert by["deploy"].reason == "skipped: needs 'test', which skipped"
    assert by["other"].status is Status.PASSED
    assert outcome.status is Status.FAILED
    assert outcome.build.reason == "step 'build' failed: exit code 3"


def test_allow_failure_is_failed_but_build_passes(workspace, settings):
    steps = [Step(name="flaky", run="exit 1", allow_failure=True), Step(name="next", run="true")]
    outcome = run(steps, workspace, settings)
    assert outcome.step("flaky").status is Status.FAILED
    assert outcome.step("flaky").allow_failure is True
    assert outcome.step("next").status is Status.PASSED
    assert outcome.status is Status.PASSED


def test_retries_until_success(workspace, settings):
    script = "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; [ $n -ge 3 ]"
    outcome = run([Step(name="flaky", run=script, retries=2)], workspace, settings)
    step = outcome.step("flaky")
    assert (step.status, step.attempt) == (Status.PASSED, 3)
    log = Path(step.log_path).read_text()
    assert "retrying (attempt 2 of 3)" in log and "retrying (attempt 3 of 3)" in log


def test_retry_on_only_listed_exit_codes(workspace, settings):
    script = "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; exit 4"
    outcome = run([Step(name="s", run=script, retries=3, retry_on=(5,))], workspace, settings)
    assert outcome.step("s").attempt == 1
    assert (workspace / "n").read_text().strip() == "1"


def test_matrix_steps_run_with_their_variables(workspace, settings):
    from sauci.core.pipeline import parse_pipeline

    pipeline = parse_pipeline(
        "steps:\n  t:\n    matrix: {py: ['3.11', '3.12']}\n    run: echo $py && echo $py >> seen\n    needs: []\n"
    )
    outcome = run_pipeline(pipeline, workspace, settings=settings, secrets={})
    assert outcome.status is Status.PASSED
    # Each entry runs in its own copy of the workspace (sauci.core.entry_workspaces).
    logs = sorted(Path(s.log_path).read_text().strip() for s in outcome.steps)
    assert logs == ["3.11", "3.12"]
    assert not (workspace / "seen").exists()


def test_when_filter_skips_steps_for_other_branches(workspace, settings):
    from sauci.core.models import When

    steps = [
        Step(name="always", run="true"),
        Step(name="release", run="true", when=When(branches=["release/*"]), needs=[]),
    ]
    outcome = run(steps, workspace, settings, ref="refs/heads/main")
    assert outcome.step("always").status is Status.PASSED
    assert outcome.step("release").status is Status.SKIPPED
    assert "when" in outcome.step("release").reason
    assert outcome.status is Status.PASSED


def test_fail_fast_cancels_running_steps(workspace, tmp_path):
    settings = Settings(data_dir=tmp_path / "d", fail_fast=True, grace=1.0)
    steps = [
        Step(name="slow", run="sleep 30", needs=[]),
        Step(name="bad", run="sleep 0.2; exit 1", needs=[]),
        Step(name="after", run="true", needs=["slow"]),
    ]
    started = time.monotonic()
    outcome = run(steps, workspace, settings)
    assert time.monotonic() - started < 25, "fail-fast did not stop the slow step"
    assert outcome.step("bad").status is Status.FAILED
    assert outcome.step("slow").status is Status.CANCELLED
    assert outcome.step("after").status is Status.SKIPPED
    assert outcome.status is Status.FAILED


def test_cancel_ends_running_steps_and_records_cancelled(workspace, settings):
    from sauci.app import LocalRunner
    from sauci.core.models import BuildRequest

    store = MemoryStore()
    runner = LocalRunner(store=store, settings=settings, secrets={})
    pipeline = Pipeline(steps=[Step(name="hang", run="sleep 60"), Step(name="after", run="true")])
    timer = threading.Timer(0.5, runner.cancel_all)
    timer.start()
    started = time.monotonic()
    outcome = runner.run_pipeline(pipeline, workspace, BuildRequest(repo="r"))
    assert time.monotonic() - started < 20
    assert outcome.step("hang").status is Status.CANCELLED
    assert outcome.step("hang").ended_by is EndedBy.CANCELLED
    assert outcome.step("after").status is Status.CANCELLED
    assert outcome.status is Status.CANCELLED
    assert store.get_build(outcome.build.id).status is Status.CANCELLED


def test_timeout_is_a_failure_with_reason(workspace, settings):
    outcome = run([Step(name="slow", run="sleep 30", timeout=0.5)], workspace, settings)
    step = outcome.step("slow")
    assert step.status is Status.FAILED
    assert step.ended_by is EndedBy.TIMEOUT
    assert "timeout" in step.reason


def test_step_env_is_built_explicitly_and_hides_sauci_secrets():
    build = Build(id=7, repo="/r", ref="refs/heads/main", sha="abc", event="push")
    pipeline = Pipeline(
        steps=[Step(name="s", run="true", env={"B": "step"}, secrets=["TOKEN"])],
        env={"A": "1", "B": "top"},
    )
    host = {
        "PATH": "/bin",
        "HOME": "/root",
        "SAUCI_DB_PASSWORD": "hunter2",
        "TOKEN": "t0k3n",
        "OTHER": "x",
    }
    env = step_env(build, pipeline, pipeline.steps[0], Path("/ws"), secrets=host, host=host)
    assert env["A"] == "1" and env["B"] == "step"
    assert env["TOKEN"] == "t0k3n"
    assert env["SAUCI_BRANCH"] == "main" and env["SAUCI_BUILD_ID"] == "7" and env["CI"] == "true"
    assert "SAUCI_DB_PASSWORD" not in env and "OTHER" not in env


def test_secrets_are_masked_in_logs_and_store(workspace, settings):
    store = MemoryStore()
    step = Step(name="s", run="echo token=$TOKEN", secrets=["TOKEN"])
    outcome = run_pipeline(
        Pipeline(steps=[step]),
        workspace,
        settings=settings,
        store=store,
        secrets={"TOKEN": "s3cr3t-value"},
    )
    assert outcome.status is Status.PASSED
    on_disk = Path(outcome.step("s").log_path).read_bytes()
    stored = store.read_log(outcome.build.id, "s")
    assert b"s3cr3t-value" not in on_disk and b"s3cr3t-value" not in stored
    assert b"token=***" in on_disk
    assert stored == on_disk


def test_a_secret_left_in_the_workspace_is_masked_in_a_later_step_too(workspace, settings):
    """One step is given TOKEN and writes it to a file; the next, which does not
    name it, prints the file: the value is masked in both logs."""
    store = MemoryStore()
    steps = [
        Step(name="write", run="echo $TOKEN > leak.txt", secrets=["TOKEN"]),
        Step(name="read", run="cat leak.txt"),
    ]
    outcome = run_pipeline(
        Pipeline(steps=steps),
        workspace,
        settings=settings,
        store=store,
        secrets={"TOKEN": "s3cr3t-value", "OTHER": "never-named"},
    )
    assert outcome.status is Status.PASSED
    assert b"***\n" == store.read_log(outcome.build.id, "read")
    assert "s3cr3t-value\n" == (workspace / "leak.txt").read_text()


class Recorder(BuildObserver):
    """What a live viewer (the terminal) is shown of each step."""

    def __init__(self) -> None:
        self.output: dict[str, bytes] = {}

    def step_output(self, build, step, data):
        self.output[step] = self.output.get(step, b"") + data


def test_observers_see_only_masked_output(workspace, settings):
    """The terminal of `sauci run` is an observer: it is shown the masked
    bytes, also when the secret comes in two pieces of output."""
    store = MemoryStore()
    recorder = Recorder()
    step = Step(
        name="s",
        run='printf "token=%s" "${TOKEN%-*}"; sleep 0.3; printf -- "-%s\\n" "${TOKEN##*-}"',
        secrets=["TOKEN"],
    )
    outcome = run_pipeline(
        Pipeline(steps=[step]),
        workspace,
        settings=settings,
        store=store,
        secrets={"TOKEN": "s3cr3t-value"},
        observer=recorder,
    )
    assert outcome.status is Status.PASSED
    assert b"token=***\n" == recorder.output["s"]
    assert b"token=***\n" == Path(outcome.step("s").log_path).read_bytes()


def test_secrets_are_masked_in_junit_results(workspace, settings):
    store = MemoryStore()
    report = (
        '<testsuite name="s"><testcase classname="m" name="uses $TOKEN">'
        '<failure message="bad token $TOKEN">sent $TOKEN</failure></testcase></testsuite>'
    )
    step = Step(
        name="t",
        run=f"mkdir -p r; cat > r/j.xml <<EOF\n{report}\nEOF\nexit 1",
        junit=["r/*.xml"],
        secrets=["TOKEN"],
    )
    outcome = run_pipeline(
        Pipeline(steps=[step]),
        workspace,
        settings=settings,
        store=store,
        secrets={"TOKEN": "s3cr3t-value"},
    )
    ((_, case),) = store.list_test_results(outcome.build.id)
    assert ("uses ***", "bad token ***", "sent ***") == (case.name, case.message, case.text)


def test_junit_and_artifacts_are_recorded(workspace, settings):
    store = MemoryStore()
    report = (
        '<testsuite name="s"><testcase classname="m" name="ok"/>'
        '<testcase classname="m" name="bad"><failure message="boom">trace</failure></testcase></testsuite>'
    )
    step = Step(
        name="t",
        run=f"mkdir -p out r; echo data > out/a.txt; echo '{report}' > r/j.xml",
        junit=["r/*.xml"],
        artifacts=["out/*.txt"],
    )
    outcome = run_pipeline(
        Pipeline(steps=[step]), workspace, settings=settings, store=store, secrets={}
    )
    tests = store.list_test_results(outcome.build.id)
    assert sorted((t.name, t.status) for _, t in tests) == [("bad", "failed"), ("ok", "passed")]
    arts = store.list_artifacts(outcome.build.id)
    assert [(s, a.path, a.size) for s, a in arts] == [("t", "out/a.txt", 5)]


def test_limits_reach_the_sandbox(workspace, settings):
    """A memory limit too small for the command ends it (cgroups), or the step errors (no cgroups)."""
    step = Step(
        name="hog",
        run="python3 -c 'b = bytearray(400 * 1024 * 1024); print(len(b))'",
        limits=Limits(memory=64 * 1024 * 1024),
    )
    outcome = run([step], workspace, settings)
    result = outcome.step("hog")
    assert result.status is not Status.PASSED
    if result.status is Status.ERRORED:  # this machine cannot enforce it: never a silent pass
        assert "cannot enforce" in result.reason
    else:
        assert result.ended_by is EndedBy.OUT_OF_MEMORY
        assert "out of memory" in result.reason


def test_a_limit_the_sandbox_cannot_enforce_errors_the_step(workspace, settings):
    from sauci.sandbox.local import LocalSandbox

    sandbox = LocalSandbox(use_cgroups=False)
    step = Step(name="s", run="true", limits=Limits(memory=64 * 1024 * 1024))
    outcome = run_pipeline(
        Pipeline(steps=[step]), workspace, settings=settings, sandbox=sandbox, secrets={}
    )
    result = outcome.step("s")
    assert result.status is Status.ERRORED
    assert "cannot enforce" in result.reason and "64 MiB" in result.reason
    assert outcome.status is Status.ERRORED


def test_unenforced_limits_can_be_a_warning_by_setting(workspace, tmp_path):
    from sauci.sandbox.local import LocalSandbox

    settings = Settings(data_dir=tmp_path / "d", unenforced_limits="warn")
    sandbox = LocalSandbox(use_cgroups=False)
    step = Step(name="s", run="echo ran", limits=Limits(memory=64 * 1024 * 1024))
    outcome = run_pipeline(
        Pipeline(steps=[step]), workspace, settings=settings, sandbox=sandbox, secrets={}
    )
    result = outcome.step("s")
    assert result.status is Status.PASSED
    log = Path(result.log_path).read_text()
    assert "sauci: warning: step 's' asks for a memory limit of 64 MiB" in log
    assert "running without it" in log and "ran" in log


def test_core_runner_loads_a_named_sandbox_only_through_the_loader_it_is_given(workspace, settings):
    """The core names no sandbox adapter: a step naming a sandbox is run in what the
    loader handed in returns, and errs with a reason when no loader was given."""
    from sauci.core.executor import Executor
    from sauci.core.models import BuildRequest
    from sauci.sandbox.local import LocalSandbox

    loaded: list[str] = []

    def loader(name: str) -> LocalSandbox:
        loaded.append(name)
        return LocalSandbox()

    pipeline = Pipeline(steps=[Step(name="t", run="true", sandbox="local")])
    for load_sandbox, expected in ((loader, Status.PASSED), (None, Status.ERRORED)):
        store = MemoryStore()
        build = store.create_build(BuildRequest(repo="r"), status=Status.RUNNING)
        executor = Executor(
            store=store,
            sandbox=LocalSandbox(),
            load_sandbox=load_sandbox,
            logs_dir=settings.logs_dir,
            artifacts_dir=settings.artifacts_dir,
            secrets={},
        )
        [step] = executor.execute(build, pipeline, workspace, cancel=threading.Event())
        assert expected == step.status
    assert ["local"] == loaded
    assert (
        "sandbox error: step 't' names sandbox 'local', but this runner was given no way to load one"
        == step.reason
    )


def test_a_sparse_artifact_cannot_fill_the_servers_disk(workspace, tmp_path):
    """Hostile: a sparse file (or a thousand hard links to one) costs the
    workspace nothing; copied as an artifact it costs the server's disk its
    whole size. The bytes a step's artifacts copy are capped; what is past
    the cap is not kept and the step's reason says so."""
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, artifact_limit=1024 * 1024)
    store = MemoryStore()
    step = Step(
        name="t",
        run="mkdir -p out; echo data > out/a.txt; truncate -s 1G out/huge.bin",
        artifacts=["out/*"],
    )
    outcome = run_pipeline(
        Pipeline(steps=[step]), workspace, settings=settings, store=store, secrets={}
    )
    result = outcome.step("t")
    assert result.status is Status.PASSED
    assert "artifact limit: 1 file(s) not kept (out/huge.bin first)" in (result.reason or "")
    arts = store.list_artifacts(outcome.build.id)
    assert [(a.path, a.size) for _, a in arts] == [("out/a.txt", 5)]
    kept = [p.name for p in settings.artifacts_dir.rglob("*") if p.is_file()]
    assert kept == ["a.txt"]


def test_an_artifact_or_report_whose_name_is_not_utf8_is_not_kept_and_the_step_passes(
    workspace, tmp_path
):
    """Hostile: file names are bytes. A step's `touch $'out/a\\xff'` matched by
    its artifacts made the step errored ("SauCI failed while running the
    step": SQLite refuses the name) and its other artifacts were lost."""
    from sauci.storage.sqlite import SQLiteStore

    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    store = SQLiteStore(tmp_path / "s.db")
    report = "<testsuite><testcase name='t'/></testsuite>"
    step = Step(
        name="t",
        run=(
            "mkdir -p out; echo ok > out/ok.txt; echo x > \"out/a$(printf '\\377')\"; "
            f'echo "{report}" > "r$(printf \'\\376\').xml"; echo "{report}" > r.xml' + "; "
            "echo '<x' > \"r$(printf '\\375').xml\""
        ),
        artifacts=["out/*"],
        junit=["r*.xml"],
    )
    outcome = run_pipeline(
        Pipeline(steps=[step]), workspace, settings=settings, store=store, secrets={}
    )
    result = outcome.step("t")
    assert result.status is Status.PASSED, result.reason
    assert "1 file(s) not kept: a name that is not UTF-8 (out/a\\xff first)" in (
        result.reason or ""
    )
    assert ["out/ok.txt"] == [a.path for _, a in store.list_artifacts(outcome.build.id)]
    cases = sorted((c.name, c.status) for _, c in store.list_test_results(outcome.build.id))
    assert [("r\\xfd.xml", "errored"), ("t", "passed"), ("t", "passed")] == cases
