"""benchmarks/real_projects.py: its pipelines and counts offline; one real run against PyPI."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from sauci import parse_pipeline

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_projects as rp  # noqa: E402

JUNIT_SUITES = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
 errors="1" failures="1" skipped="1" tests="9" time="0.5">
<testcase classname="t.A" name="test_a"/>
<testcase classname="t.B" name="test_a"/>
<testcase classname="t" name="test_f"><failure message="no">x</failure></testcase>
<testcase classname="t" name="test_e"><error message="boom"/></testcase>
<testcase classname="t" name="test_s"><skipped message="later"/></testcase>
</testsuite></testsuites>"""


def test_every_project_pipeline_is_valid_and_runs_pytest_with_a_junit_report():
    for project in rp.PROJECTS.values():
        text = rp.pipeline(project, "/usr/bin/python3")
        steps = {s.name: s for s in parse_pipeline(text).steps}
        assert ["install", "test"] == list(steps)
        assert ("install",) == steps["test"].needs
        assert ("reports/*.xml",) == steps["test"].junit
        install = "\n".join(steps["install"].run)
        assert "/usr/bin/python3 -m venv .venv" in install
        assert all(dep in install for dep in project.test_deps)
        test = " ".join(steps["test"].run)
        assert test.startswith(".venv/bin/python -m pytest")
        assert "--junitxml=reports/junit.xml" in test
        assert all(path in test for path in project.tests)
        assert "cache:" not in text


def test_deselected_tests_are_passed_to_pytest_quoted():
    project = rp.Project(name="x", version="1", deselect=("tests/test_a.py::test_b[1 2]",))
    text = rp.pipeline(project, "/usr/bin/python3")
    (step,) = [s for s in parse_pipeline(text).steps if s.name == "test"]
    assert "'--deselect=tests/test_a.py::test_b[1 2]'" in step.run[0]


def test_the_cache_entry_only_with_the_flag():
    text = rp.pipeline(rp.PROJECTS["six"], "/usr/bin/python3", cache=True)
    version = rp.interpreter_version("/usr/bin/python3")
    assert f"cache:\n      paths: [.venv]\n      key: venv-py{version}-${{{{ hashFiles(" in text
    # An exact hit skips the install's run; otherwise it is made as without the flag.
    assert "      skip_on_hit: true\n" in text
    assert "      /usr/bin/python3 -m venv .venv\n" in text


def test_a_hostile_interpreter_path_is_quoted():
    text = rp.pipeline(rp.PROJECTS["six"], "/opt/py $(touch x)/python3")
    assert "'/opt/py $(touch x)/python3' -m venv .venv" in text


def test_junit_counts_are_the_cases_the_report_lists():
    assert rp.Counts(passed=2, failed=2, skipped=1) == rp.junit_counts(JUNIT_SUITES)
    single = '<testsuite tests="1"><testcase classname="c" name="n"/></testsuite>'
    assert rp.Counts(passed=1) == rp.junit_counts(single)
    assert "1/0/0" == str(rp.junit_counts(single))


def test_pytest_totals_count_what_the_cases_do_not():
    # pytest counts each subtest in <testsuite tests=...>, not as a case.
    assert rp.Counts(passed=6, failed=2, skipped=1) == rp.pytest_totals(JUNIT_SUITES)
    single = '<testsuite tests="5" failures="0" errors="0" skipped="1"></testsuite>'
    assert rp.Counts(passed=4, failed=0, skipped=1) == rp.pytest_totals(single)


def test_store_counts_group_errors_with_failures():
    statuses = ["passed", "passed", "failed", "errored", "skipped", "passed"]
    assert rp.Counts(passed=3, failed=2, skipped=1) == rp.store_counts(statuses)


def test_ok_needs_both_builds_passed_and_equal_counts():
    same = rp.Counts(passed=3)
    good = rp.Result(project="p", status="passed", warm_status="passed", sauci=same, plain=same)
    assert good.ok
    assert not rp.Result(
        project="p", status="passed", warm_status="failed", sauci=same, plain=same
    ).ok
    assert not rp.Result(
        project="p", status="passed", warm_status="passed", sauci=same, plain=rp.Counts(passed=4)
    ).ok
    assert not rp.Result(project="p", status="passed", warm_status="passed").ok


def test_the_goal_line_gives_each_figure_its_bare_baseline_and_goal():
    r = rp.Result(
        project="idna",
        first=[5.5, 9.0, 5.0],
        bare_install=[4.5, 4.0, 5.0],
        bare_pytest=[0.5, 0.5, 0.5],
        warm=[0.7, 0.6, 3.0],
        bare_fresh=[0.5, 0.4, 0.5],
    )
    line = rp.goal_line(r)
    # Medians of the rounds: one slow round moves neither side.
    assert line.startswith("idna: first build 5.50 s / bare install + test 5.00 s = 1.10x")
    assert "(goal <= 1.10x: met)" in line
    assert "warm rebuild 0.70 s / bare pytest 0.50 s = 1.40x (goal <= 1.30x: MISSED)" in line
    assert "in CPU -" in line  # not measured: said so, not made up


def test_rounds_take_the_two_sides_in_turns():
    order: list[str] = []
    for index in range(3):
        rp.in_turns(index, lambda: order.append("bare"), lambda: order.append("sauci"))
    assert ["bare", "sauci", "sauci", "bare", "bare", "sauci"] == order


def test_a_round_that_counts_otherwise_is_not_ok():
    same = rp.Counts(passed=3)
    r = rp.Result(project="p", status="passed", warm_status="passed", sauci=same, plain=same)
    r.counted(same, plain=False, what="warm rebuild #2")
    assert r.ok
    r.counted(rp.Counts(passed=2, failed=1), plain=False, what="warm rebuild #3")
    assert not r.ok
    assert ["warm rebuild #3 counted 2/1/0, not 3/0/0"] == r.notes


def test_one_build_that_did_not_pass_is_the_figure_status():
    r = rp.Result(project="p")
    for status in ("passed", "failed", "passed"):
        r.passed(status, warm=True)
    r.passed("passed", warm=False)
    assert ("passed", "failed") == (r.status, r.warm_status)


SERVER_LOG = """\
2026-12-07T16:07:20.903902Z [info    ] workspace_files_not_adopted workspace=/w hard_linked=2462
2026-12-07T16:07:21.133424Z [info    ] cache_saved repo=/r key=venv-k bytes=39833600 seconds=0.286
"""


def test_phases_say_where_a_build_went_from_its_records_and_logs():
    at = rp.datetime.fromisoformat("2026-12-07T16:07:20+00:00").timestamp()
    build = SimpleNamespace(
        repo="/r", queued_at=at - 3.1, started_at=at - 3.0, finished_at=at + 2.0
    )
    steps = [
        SimpleNamespace(name="install", started_at=at - 2.9, finished_at=at - 0.1),
        SimpleNamespace(name="test", started_at=at, finished_at=at + 1.9),
    ]
    logs = {
        "install": "sauci: cache: miss for venv-k\n"
        "sauci: cache: saved venv-k (38.0 MiB linked in 0.3 s; its archive is written after)\n",
        "test": "....\n184 passed, 16 skipped in 0.93s\n",
    }
    line = rp.phases(build, steps, logs, SERVER_LOG)
    assert line.startswith("claim 0.100; checkout 0.100; install 2.800 (cache saved 38.0 MiB")
    assert "; gap 0.100; test 1.900 (handed over at +0.904, pytest says 0.93); end 0.100" in line
    assert line.endswith("archive 0.286 (kept 0.867 s before the build's end)")
    parts = {name: seconds for name, seconds, _ in rp.phase_parts(build, steps, logs, SERVER_LOG)}
    assert 0.97 == pytest.approx(parts["test outside pytest"])
    # Another key's archive is not this build's; none of its own yet is said.
    other = SERVER_LOG.replace("key=venv-k", "key=venv-other")
    assert rp.phases(build, steps, logs, other).endswith("archive (not yet kept)")


def test_an_unknown_project_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        rp.main(["--projects", "six,nosuch"])
    assert 2 == exit_.value.code
    assert "unknown project(s) nosuch" in capsys.readouterr().err


@pytest.mark.slow
def test_six_under_a_real_serve_counts_as_plain_pytest(tmp_path):
    probe = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary"),
            *(":all:", "six==1.16.0", "-d", str(tmp_path)),
        ],
        capture_output=True,
        timeout=120,
    )
    if probe.returncode:
        pytest.skip("the package index is unreachable")
    # The local sandbox: this test is about the script; .ci/run runs it under
    # serve's default sandbox.
    done = subprocess.run(
        [
            *(sys.executable, str(ROOT / "benchmarks/real_projects.py")),
            *("--projects", "six", "--sandbox", "local", "--rounds", "2", "--warm-rounds", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    # The table's row (the lines of each round start "six, ", the goal line "six: ").
    (row,) = [line.split() for line in done.stdout.splitlines() if line.startswith("six ")]
    assert "passed" == row[1]
    assert row[2] == row[3]  # sauci's counts are plain pytest's
    passed, failed, _ = map(int, row[2].split("/"))
    assert passed > 100 and 0 == failed
    assert "2+2" == row[4]  # two first builds (rounds) and a warm rebuild after each


def test_the_venv_key_names_the_pipeline_and_the_interpreter_version():
    text = rp.pipeline(rp.PROJECTS["six"], sys.executable, cache=True)
    (install,) = [s for s in parse_pipeline(text).steps if s.name == "install"]
    assert install.cache is not None and install.cache.skip_on_hit
    assert install.cache.key.startswith(f"venv-py{platform.python_version()}-")
    assert "'.sauci.yml'" in install.cache.key  # it names the interpreter
    assert "unknown" == rp.interpreter_version("/nonexistent/python3")


def test_another_repository_s_archive_of_the_same_key_is_not_this_build_s():
    at = rp.datetime.fromisoformat("2026-12-07T16:07:20+00:00").timestamp()
    build = SimpleNamespace(repo="/other", queued_at=at - 1, started_at=at - 1, finished_at=at)
    steps = [SimpleNamespace(name="install", started_at=at - 1, finished_at=at)]
    logs = {"install": "sauci: cache: saved venv-k (1 MiB linked in 0.1 s; after)\n"}
    assert rp.phases(build, steps, logs, SERVER_LOG).endswith("archive (not yet kept)")


def test_phase_medians_put_each_phase_beside_bare_pytest_s():
    r = rp.Result(
        project="idna",
        first_phases=[{"claim": 0.1, "install": 20.0}],
        warm_phases=[{"claim": 0.03, "test": 1.0}, {"claim": 0.01, "test": 3.0}, {"claim": 0.02}],
        bare_fresh=[1.0, 1.2],
        bare_fresh_said=[0.4, 0.4],
    )
    line = rp.phase_medians(r)
    assert line.startswith("idna, phases: medians of 1 first builds: claim 0.100, install 20.000;")
    assert "of 3 warm rebuilds: claim 0.020, test 2.000;" in line
    assert line.endswith("bare pytest 1.10, outside pytest 0.700")


def test_the_cpu_at_a_build_s_end_is_read_between_the_samples_around_it():
    samples = [(10.0, 1.0), (10.1, 1.2), (10.3, 1.6)]
    # A build that ended at 10.2: not what was used by the time the script saw it.
    assert 1.4 == pytest.approx(rp.cpu_at(samples, 10.2))
    assert 1.2 == rp.cpu_at(samples, 10.1)
    assert 1.0 == rp.cpu_at(samples, 9.0)  # before the first sample: the first
    assert 1.6 == rp.cpu_at(samples, 11.0)


def test_a_build_s_cpu_is_split_by_its_steps_from_the_samples():
    samples = [(10.0, 1.0), (11.0, 1.5), (13.0, 4.5), (13.5, 4.6), (15.0, 6.0), (15.2, 6.1)]
    meter = SimpleNamespace(at=lambda when: rp.cpu_at(samples, when))
    build = SimpleNamespace(finished_at=15.2)
    steps = [
        SimpleNamespace(name="install", started_at=11.0, finished_at=13.0),
        SimpleNamespace(name="test", started_at=13.5, finished_at=15.0),
        SimpleNamespace(name="never", started_at=None, finished_at=None),
    ]
    shares = rp.step_cpu(meter, 0.9, build, steps)
    assert shares == pytest.approx(
        {"before cpu": 0.6, "install cpu": 3.0, "test cpu": 1.4, "after cpu": 0.1}
    )
    assert {} == rp.step_cpu(meter, None, build, steps)  # no group: nothing said


def test_phase_medians_put_the_first_builds_step_cpu_beside_the_bare_install_s():
    r = rp.Result(
        project="six",
        first_phases=[{"install": 4.0, "install cpu": 3.9}],
        bare_install=[3.5],
        bare_install_cpu=[3.4],
        bare_pytest=[0.5],
        bare_pytest_cpu=[0.45],
    )
    line = rp.phase_medians(r)
    assert "install cpu 3.900" in line
    assert line.endswith("bare install 3.50 s, cpu 3.400; bare pytest after it 0.50 s, cpu 0.450")


def test_the_server_s_own_cpu_is_its_threads_and_none_once_it_is_gone():
    serve = SimpleNamespace(proc=SimpleNamespace(pid=os.getpid()))
    assert rp.Serve.own_cpu(serve) >= 0  # type: ignore[arg-type]
    serve.proc.pid = 2**22 + 1  # above pid_max: no such process
    assert rp.Serve.own_cpu(serve) is None  # type: ignore[arg-type]
