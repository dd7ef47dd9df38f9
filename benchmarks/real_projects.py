"""Real projects under a real `sauci serve`, beside plain pytest (issue 17's acceptance).

    python benchmarks/real_projects.py [--projects six,itsdangerous] [--sandbox NAME]
                                       [--no-cache] [--keep] [--python PATH]

For each project: its sdist at a pinned version from the package index
(`pip download --no-deps --no-binary :all:`), unpacked into a git repository
with a `.sauci.yml` whose `install` step makes a venv in the workspace and
installs the project and its test dependencies, and whose `test` step runs
pytest with `--junitxml`. One `sauci serve --no-ui` (its default sandbox
unless --sandbox says otherwise) watches a bare repository per project; the
script pushes each project, waits for the build, reads its test counts from
the store, then, once the server has tidied the build's workspace slot
(the seconds it took are printed), pushes an empty commit (the warm rebuild).

Beside it, plain pytest: the same sdist in a fresh venv made by hand, the
same install and pytest command, timed apart, in the environment a step gets
(no PIP_* variables) with a HOME of its own: its pip cache starts cold, as
the server's (whose HOME a local-sandbox step inherits) does.

Counts are the cases of the JUnit report by outcome, passed/failed/skipped
(errors count as failed); pytest's own totals are printed beside them where
they differ (subtests count in those, not in the report).

Prints a row per project: status, sauci's counts and plain pytest's
(passed/failed/skipped), the first build, the warm rebuild, bare install +
pytest and bare pytest (once before the builds, and twice just after the
warm rebuild, under the load of that moment: as it is, then "fresh", with
the project's bytecode removed as in a build's fresh checkout), and the
ratios the issue sets as goals (first build <= bare install + test + 10%,
warm rebuild <= 1.3 x bare pytest). Where the script may make a cgroup-v1
cpuacct group (root), it also prints the CPU time of the warm rebuild (the
server and every step it ran, sandboxed or not) beside that of the fresh
bare pytest: on a shared machine CPU time moves less than wall time. Exits 1
when a build does not pass or its counts differ from plain pytest's; the
time goals are reported, never enforced (the machine is shared).

The install step has a `cache:` entry (the venv, keyed on the project's
files, the pipeline and the interpreter's version, with `skip_on_hit`), so
the warm rebuild restores the venv and skips the install's run; --no-cache
leaves it out (every build installs, with pip's download cache).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This checkout's sauci, whatever `sauci` is installed.


def sauci_argv(root: Path = ROOT) -> list[str]:
    """Run the sauci of the checkout ``root``, whatever `sauci` is installed."""
    code = f"import sys; sys.path.insert(0, {str(root)!r}); from sauci.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code]


SAUCI = sauci_argv()
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass(frozen=True)
class Project:
    """A project on the package index whose sdist carries its test suite."""

    name: str
    version: str
    test_deps: tuple[str, ...] = ("pytest",)
    tests: tuple[str, ...] = ("tests",)
    # pytest node ids known to fail for reasons outside the project (printed when used).
    deselect: tuple[str, ...] = ()


# Pinned so that the counts are comparable from run to run. tomli is not here:
# its sdists (2.0.1 to 2.2.1) ship no tests.
PROJECTS: dict[str, Project] = {
    p.name: p
    for p in (
        Project(name="six", version="1.16.0", tests=("test_six.py",)),
        Project(name="itsdangerous", version="2.2.0", test_deps=("pytest", "freezegun")),
        Project(name="more-itertools", version="10.5.0"),
        Project(name="packaging", version="24.2", test_deps=("pytest", "pretend")),
        Project(name="idna", version="3.10"),
        Project(
            name="attrs",
            version="24.2.0",
            test_deps=("pytest", "hypothesis", "cloudpickle", "pympler"),
            # Fails on Debian's Python 3.11.2 (pipe()'s return annotation is
            # not found), in plain pytest as under SauCI.
            deselect=("tests/test_converters.py::TestPipe::test_wrapped_annotation",),
        ),
    )
}
DEFAULT_PROJECTS = ("six", "itsdangerous", "more-itertools", "packaging", "idna", "attrs")


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0

    def __str__(self) -> str:
        return f"{self.passed}/{self.failed}/{self.skipped}"


@dataclass
class Result:
    project: str
    status: str = "-"
    sauci: Counts | None = None
    plain: Counts | None = None
    first: float | None = None
    warm: float | None = None
    warm_status: str = "-"
    bare_install: float | None = None
    bare_pytest: float | None = None
    bare_pytest_again: float | None = None  # just after the warm rebuild
    # The same, the project's bytecode removed first: a fresh checkout, as
    # every build's workspace is (the venv's bytecode kept, as restored).
    bare_pytest_fresh: float | None = None
    warm_cpu: float | None = None  # CPU seconds of the server and its steps
    first_cpu: float | None = None  # the same, for the first build
    bare_cpu: float | None = None  # CPU seconds of bare install + pytest
    bare_pytest_cpu: float | None = None  # CPU seconds of bare pytest (fresh)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.status == "passed"
            and self.warm_status == "passed"
            and self.sauci is not None
            and self.sauci == self.plain
        )


# -- the pipeline ---------------------------------------------------------------


def install_command(project: Project, python: str) -> str:
    deps = " ".join(shlex.quote(d) for d in project.test_deps)
    return (
        f"{shlex.quote(python)} -m venv .venv\n"
        f".venv/bin/python -m pip install -q --disable-pip-version-check {deps} .\n"
    )


def pytest_args(project: Project, junit: str) -> list[str]:
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    args += [f"--deselect={node}" for node in project.deselect]
    return [*args, *project.tests]


def interpreter_version(python: str) -> str:
    """``3.11.2``: a venv made with another interpreter version must not be
    reused; ``unknown`` when ``python`` does not run (its build fails anyway)."""
    try:
        done = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def pipeline(project: Project, python: str, cache: bool = False) -> str:
    """The `.sauci.yml` of a project: install into a workspace venv, then pytest."""
    install = install_command(project, python)
    lines = ["# Made by benchmarks/real_projects.py", "steps:", "  install:"]
    if cache:
        # The venv is kept between builds while the project's files, this
        # pipeline (which names the interpreter) and the interpreter's version
        # are the same (a non-editable install, so any change of its files
        # misses the cache); on an exact hit SauCI skips the install's run.
        version = interpreter_version(python)
        lines += [
            "    cache:",
            "      paths: [.venv]",
            f"      key: venv-py{version}-${{{{ hashFiles('.sauci.yml', '**/*.py', "
            "'**/*.toml', '**/*.cfg') }}",
            "      skip_on_hit: true",
        ]
    lines += ["    run: |", *(f"      {line}" for line in install.splitlines())]
    test = " ".join(
        shlex.quote(a) for a in [".venv/bin/python", *pytest_args(project, "reports/junit.xml")]
    )
    lines += ["  test:", "    needs: [install]", f"    run: {test}", "    junit: reports/*.xml", ""]
    return "\n".join(lines)


def github_workflow(project: Project, python: str) -> str:
    """A `.github/workflows/tests.yml` of the usual shape (``--workflow github``).

    checkout, setup-python over a matrix of python-version (the version of
    ``python``), actions/cache of pip's downloads, pip install, pytest with
    a JUnit report, upload-artifact of that report: what most projects'
    test workflows do, run by SauCI's GitHub front end.
    """
    version = run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).strip()
    deps = " ".join(shlex.quote(d) for d in project.test_deps)
    test = " ".join(shlex.quote(a) for a in pytest_args(project, "reports/junit.xml"))
    return f"""# Made by benchmarks/real_projects.py --workflow github
name: Tests
on:
  push:
    branches: [main]
  pull_request:
permissions:
  contents: read
jobs:
  tests:
    name: Python ${{{{ matrix.python-version }}}}
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        python-version: ["{version}"]
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - uses: actions/setup-python@0b93645e9fea7318ecaed2b359559ac225c90a2b # v5.3.0
        with:
          python-version: ${{{{ matrix.python-version }}}}
      - uses: actions/cache@1bd1e32a3bdc45362d1e726936510720a7c30a57 # v4.2.0
        with:
          path: ~/.cache/pip
          key: pip-${{{{ runner.os }}}}-${{{{ matrix.python-version }}}}-${{{{ hashFiles('setup.py', 'pyproject.toml') }}}}
          restore-keys: pip-${{{{ runner.os }}}}-
      - name: Install
        run: python -m pip install -q --disable-pip-version-check {deps} .
      - name: Test
        run: python {test}
      - uses: actions/upload-artifact@b4b15b8c7c6ac21ea08fcf65892d2ee8c75cf945 # v4.4.3
        if: always()
        with:
          name: junit-${{{{ matrix.python-version }}}}
          path: reports/junit.xml
"""


# -- counts ---------------------------------------------------------------------


def junit_counts(xml_text: str) -> Counts:
    """The test cases a JUnit report lists, by outcome: what SauCI should store."""
    passed = failed = skipped = 0
    for case in ET.fromstring(xml_text).iter("testcase"):
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            failed += 1
        elif "skipped" in kinds:
            skipped += 1
        else:
            passed += 1
    return Counts(passed=passed, failed=failed, skipped=skipped)


def pytest_totals(xml_text: str) -> Counts:
    """pytest's own totals, its <testsuite> attributes (subtests count there, one each)."""
    root = ET.fromstring(xml_text)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = failed = skipped = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return Counts(passed=total - failed - skipped, failed=failed, skipped=skipped)


def store_counts(statuses: Sequence[str]) -> Counts:
    """Counts of the test results SauCI stored (statuses of its TestCase records)."""
    return Counts(
        passed=sum(s == "passed" for s in statuses),
        failed=sum(s in ("failed", "errored", "error") for s in statuses),
        skipped=sum(s == "skipped" for s in statuses),
    )


# -- helpers --------------------------------------------------------------------


def step_like_env(home: Path) -> dict[str, str]:
    """What a served step sees of the host (sauci's pass-through list), with its own HOME.

    Not this process's PIP_* variables (find-links, caches), which no step gets.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: os.environ[k]
        for k in ("PATH", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TERM")
        if k in os.environ
    }
    return {**env, "HOME": str(home)}


def run(cmd: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` (in this process's environment unless ``env`` is given); its output."""
    done = subprocess.run(
        list(cmd),
        cwd=cwd,
        env={**(os.environ if env is None else env), **GIT_ENV},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(
            f"{shlex.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def wait_for(check: Callable[[], object], timeout: float, what: str, poll: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def download(project: Project, into: Path) -> Path:
    """The project's sdist, unpacked; its directory."""
    into.mkdir(parents=True, exist_ok=True)
    spec = f"{project.name}=={project.version}"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            ":all:",
            spec,
            "-d",
            str(into),
        ]
    )
    sdist = next(p for p in into.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(into / "src", filter="data")
        else:
            tar.extractall(into / "src")  # a pinned release from the index
    (top,) = (into / "src").iterdir()
    return top


# -- plain pytest ---------------------------------------------------------------


def plain_pytest(project: Project, source: Path, python: str, work: Path, result: Result) -> None:
    """The same install and pytest in a fresh venv, no SauCI; counts and times."""
    tree = work / "plain"
    shutil.copytree(source, tree)
    env = step_like_env(work.parent / "plain-home")  # cold at first, as serve-home
    cpu0 = children_cpu()
    t0 = time.monotonic()
    run(["bash", "-eo", "pipefail", "-c", install_command(project, python)], cwd=tree, env=env)
    result.bare_install = time.monotonic() - t0
    junit = tree / "reports" / "junit.xml"
    t0 = time.monotonic()
    subprocess.run(
        [str(tree / ".venv/bin/python"), *pytest_args(project, str(junit))],
        cwd=tree,
        env=env,
        capture_output=True,
    )
    result.bare_pytest = time.monotonic() - t0
    result.bare_cpu = children_cpu() - cpu0
    report = junit.read_text()
    result.plain = junit_counts(report)
    totals = pytest_totals(report)
    if totals != result.plain:
        result.notes.append(
            f"pytest's own totals are {totals}: its subtests count there, while its "
            "JUnit report (and so SauCI) has one case per test"
        )


def plain_pytest_again(project: Project, python: str, work: Path, result: Result) -> None:
    """Bare pytest once more, in the venv made above, right after the warm
    rebuild: on a shared machine the load of that moment, not of minutes
    before, is what the warm rebuild met. Twice: as it is (the project's
    bytecode and pytest's rewritten tests left by the first run), then with
    the project's ``__pycache__`` directories removed (not the venv's), which
    is what a build's fresh checkout starts from; its CPU time is kept too."""
    tree = work / "plain"
    env = step_like_env(work.parent / "plain-home")
    argv = [str(tree / ".venv/bin/python"), *pytest_args(project, str(tree / "reports/again.xml"))]
    t0 = time.monotonic()
    subprocess.run(argv, cwd=tree, env=env, capture_output=True)
    result.bare_pytest_again = time.monotonic() - t0
    for cache in sorted(tree.rglob("__pycache__"), reverse=True):
        if ".venv" not in cache.relative_to(tree).parts:
            shutil.rmtree(cache)
    cpu0, t0 = children_cpu(), time.monotonic()
    subprocess.run(argv, cwd=tree, env=env, capture_output=True)
    result.bare_pytest_fresh = time.monotonic() - t0
    result.bare_pytest_cpu = children_cpu() - cpu0


def children_cpu() -> float:
    """CPU seconds (user and system) of this process's waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """The CPU time of `sauci serve` and everything it starts (its steps
    too, sandboxed or not): a cgroup-v1 cpuacct group made for it. None
    where that cannot be made (not root, no cgroup v1)."""

    BASE = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self) -> None:
        self.path: Path | None = self.BASE / f"sauci-bench-{os.getpid()}"
        try:
            self.path.mkdir()
        except OSError:
            self.path = None

    def prefix(self) -> list[str]:
        """A command prefix that joins the group, then runs the rest."""
        if self.path is None:
            return []
        procs = shlex.quote(str(self.path / "cgroup.procs"))
        # A group that cannot be joined does not stop the run: see joined().
        return ["sh", "-c", f'echo $$ > {procs} 2>/dev/null; exec "$@"', "sh"]

    def joined(self, pid: int) -> None:
        """Measure nothing unless ``pid`` is in the group."""
        if self.path is None:
            return
        try:
            inside = str(pid) in (self.path / "cgroup.procs").read_text().split()
        except OSError:
            inside = False
        if not inside:
            self.close()
            self.path = None

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        """Remove the group, once the last process in it (a straggling git) is gone."""
        for _ in range(50):
            if self.path is None:
                return
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # still busy
                time.sleep(0.1)


# -- sauci serve ----------------------------------------------------------------


class Serve:
    """`sauci serve --no-ui` (this checkout's sauci) on a data dir, as a subprocess."""

    def __init__(
        self,
        data: Path,
        repos: Sequence[Path],
        sandbox: str | None,
        cpu: CpuMeter,
        sauci: Sequence[str] = SAUCI,
    ) -> None:
        self.data = data
        self.sauci = list(sauci)
        self.cpu = cpu
        self.log = data.parent / "serve.log"
        (data.parent / "serve-home").mkdir(exist_ok=True)
        argv = [
            *self.sauci,
            "serve",
            "--no-ui",
            "--data-dir",
            str(data),
            "--color",
            "never",
            "--max-builds",
            "1",
        ]
        argv += [a for repo in repos for a in ("--repo", str(repo))]
        if sandbox:
            argv += ["--sandbox", sandbox]
        self.proc = subprocess.Popen(
            [*cpu.prefix(), *argv],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            # Under the local sandbox steps get the server's HOME: a fresh one,
            # so that the first build's pip cache is as cold as plain pytest's.
            env={**os.environ, **GIT_ENV, "HOME": str(data.parent / "serve-home")},
        )
        try:
            wait_for(
                lambda: "watching" in self.output() or self.proc.poll() is not None,
                120,
                "sauci serve to start",
            )
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"sauci serve exited {self.proc.returncode}:\n{self.output()}")
        cpu.joined(self.proc.pid)  # by now its shell has joined the group and exec'd
        from sauci.storage import open_store

        self.store = open_store(f"sqlite:///{data / 'sauci.db'}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def build_of(self, push: Callable[[], None], repo: Path, timeout: float) -> object:
        """Push, then the build it made, once it ended."""
        known = {b.id for b in self.store.list_builds(limit=1000)}
        push()

        def new() -> list:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sauci serve exited {self.proc.returncode}:\n{self.output()}")
            return [b for b in self.store.list_builds(limit=50) if b.id not in known]

        bid = wait_for(new, 60, f"a build of {repo.name}")[0].id  # type: ignore[index]
        # Polled often: the server's CPU is read when the build is seen ended.
        return wait_for(
            lambda: (b := self.store.get_build(bid)).status.done and b,
            timeout,
            f"build #{bid}",
            poll=0.02,
        )

    def wait_tidied(self, timeout: float = 60) -> float:
        """Wait until no workspace slot is held: the server tidies a slot (git
        clean of the build's venv) in the background after a build, and a
        push made meanwhile waits for it. A person pushes again seconds later
        at the earliest; the seconds waited are returned (and printed)."""
        started = time.monotonic()
        for lock in sorted((self.data / "workspaces").glob(".*.lock")):
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() - started > timeout:
                            raise TimeoutError(f"{lock.name} held for {timeout:.0f} s") from None
                        time.sleep(0.02)
            finally:
                os.close(fd)  # and with it the flock, before anything is pushed
        return time.monotonic() - started

    def stop(self) -> None:
        if getattr(self, "store", None) is not None:
            self.store.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def why_not_passed(serve: Serve, build_id: int) -> str:
    """`sauci show` of the build, and the last lines of each step that failed."""
    common = ["--data-dir", str(serve.data), "--color", "never"]
    show = subprocess.run(
        [*serve.sauci, "show", str(build_id), *common], capture_output=True, text=True
    )
    parts = [(show.stdout + show.stderr).strip()]
    for step in serve.store.list_steps(build_id):
        if step.status.value in ("failed", "errored"):
            logs = subprocess.run(
                [*serve.sauci, "logs", str(build_id), step.name, *common],
                capture_output=True,
                text=True,
            )
            tail = (logs.stdout + logs.stderr).strip().splitlines()[-15:]
            parts.append(f"last lines of {step.name}:\n" + "\n".join(f"  {line}" for line in tail))
    return "\n".join(parts)


# -- the run --------------------------------------------------------------------


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def print_table(results: Sequence[Result]) -> None:
    head = (
        "project",
        "status",
        "sauci p/f/s",
        "pytest p/f/s",
        "first s",
        "warm s",
        "bare inst+test s",
        "bare pytest s",
        "again s",
        "fresh s",
        "first/bare",
        "warm/pytest",
        "warm/again",
        "warm/fresh",
        "warm cpu s",
        "fresh cpu s",
        "cpu warm/fresh",
        "first cpu s",
        "bare cpu s",
        "cpu first/bare",
    )
    rows = [head]
    for r in results:
        bare_total = (
            None
            if r.bare_install is None or r.bare_pytest is None
            else r.bare_install + r.bare_pytest
        )
        rows.append(
            (
                r.project,
                r.status if r.status == r.warm_status else f"{r.status}/{r.warm_status}",
                str(r.sauci or "-"),
                str(r.plain or "-"),
                fmt(r.first),
                fmt(r.warm),
                fmt(bare_total),
                fmt(r.bare_pytest),
                fmt(r.bare_pytest_again),
                fmt(r.bare_pytest_fresh),
                ratio(r.first, bare_total),
                ratio(r.warm, r.bare_pytest),
                ratio(r.warm, r.bare_pytest_again),
                ratio(r.warm, r.bare_pytest_fresh),
                fmt(r.warm_cpu),
                fmt(r.bare_pytest_cpu),
                ratio(r.warm_cpu, r.bare_pytest_cpu),
                fmt(r.first_cpu),
                fmt(r.bare_cpu),
                ratio(r.first_cpu, r.bare_cpu),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(
        "goals: identical counts; first build <= 1.10x bare install + test; warm rebuild <= 1.3x bare pytest"
        " ('again': bare pytest run once more just after the warm rebuild; 'fresh': then once"
        " more without the project's __pycache__, as a build's fresh checkout; cpu: the"
        " server and its steps for the warm rebuild, against that fresh bare pytest, and for"
        " the first build, against bare install + test)"
    )


FIRST_GOAL = 1.10  # first build <= bare install + test + 10%
WARM_GOAL = 1.3  # warm rebuild <= 1.3 x bare pytest


def goal_line(r: Result) -> str:
    """One line per project: each figure, its bare baseline from the same run, the goal."""
    bare = (
        None if r.bare_install is None or r.bare_pytest is None else r.bare_install + r.bare_pytest
    )

    def part(what: str, got: float | None, base: float | None, of: str, goal: float) -> str:
        if got is None or not base:
            return f"{what} -"
        verdict = "met" if got / base <= goal else "MISSED"
        return (
            f"{what} {got:.2f} s / {of} {base:.2f} s = {got / base:.2f}x "
            f"(goal <= {goal:.2f}x: {verdict})"
        )

    return "; ".join(
        (
            f"{r.project}: "
            + part("first build", r.first, bare, "bare install + test", FIRST_GOAL),
            part("in CPU", r.first_cpu, r.bare_cpu, "bare", FIRST_GOAL),
            part("warm rebuild", r.warm, r.bare_pytest, "bare pytest", WARM_GOAL),
            part("in CPU", r.warm_cpu, r.bare_pytest_cpu, "fresh bare", WARM_GOAL),
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--projects",
        default=",".join(DEFAULT_PROJECTS),
        help=f"comma-separated, from: {', '.join(PROJECTS)}",
    )
    parser.add_argument(
        "--sandbox",
        default=None,
        help="the server's --sandbox (default: what sauci serve defaults to)",
    )
    parser.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a cache: entry (the venv) on the install step (default: on; --no-cache: none)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory and print it"
    )
    parser.add_argument(
        "--python",
        default=None,
        help="the interpreter the venvs are made from (default /usr/bin/python3)",
    )
    parser.add_argument(
        "--sauci-root",
        type=Path,
        default=ROOT,
        help="the checkout whose sauci serves (default: this script's), to compare two "
        "checkouts with the same script in turns",
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds per build (default 900)"
    )
    parser.add_argument(
        "--workflow",
        choices=("native", "github"),
        default="native",
        help="the pipeline each project pushes: a .sauci.yml (default) or a GitHub "
        "workflow of the usual shape (.github/workflows/tests.yml)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.projects.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROJECTS]
    if unknown or not names:
        parser.error(
            f"unknown project(s) {', '.join(unknown) or '(none)'}; known: {', '.join(PROJECTS)}"
        )
    # A sandbox sees the system's interpreter, not one under /root (pyenv).
    python = args.python or (
        "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    )
    tmp = Path(tempfile.mkdtemp(prefix="sauci-real-"))
    tmp.chmod(0o755)  # the namespace sandbox's uid walks to the workspaces
    results = [Result(project=n) for n in names]
    print(
        f"real projects: {', '.join(names)}; sandbox {args.sandbox or '(serve default)'}; "
        f"python {python}; sauci from {args.sauci_root}; in {tmp}",
        flush=True,
    )
    serve = None
    cpu = CpuMeter()
    try:
        sources, bares = {}, {}
        for name in names:
            project = PROJECTS[name]
            if project.deselect:
                print(f"{name}: deselected {', '.join(project.deselect)}")
            sources[name] = download(project, tmp / name / "sdist")
            bares[name] = tmp / "repos" / f"{name}.git"
            run(["git", "init", "-q", "--bare", "-b", "main", str(bares[name])])
        for result in results:
            project = PROJECTS[result.project]
            plain_pytest(project, sources[result.project], python, tmp / result.project, result)
            print(
                f"{result.project}: plain pytest {result.plain} (install {fmt(result.bare_install)} s, pytest {fmt(result.bare_pytest)} s)",
                flush=True,
            )
        serve = Serve(
            tmp / "data", list(bares.values()), args.sandbox, cpu, sauci_argv(args.sauci_root)
        )
        for result in results:
            project, bare = PROJECTS[result.project], bares[result.project]
            clone = tmp / result.project / "repo"
            shutil.copytree(sources[result.project], clone)
            if args.workflow == "github":
                (clone / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
                workflow = github_workflow(project, python)
                (clone / ".github" / "workflows" / "tests.yml").write_text(workflow)
            else:
                (clone / ".sauci.yml").write_text(pipeline(project, python, cache=args.cache))
            run(["git", "init", "-q", "-b", "main"], cwd=clone)
            run(["git", "add", "-A", "-f", "."], cwd=clone)
            run(["git", "commit", "-q", "-m", f"{project.name} {project.version}"], cwd=clone)
            run(["git", "remote", "add", "origin", str(bare)], cwd=clone)

            def push(clone: Path = clone) -> None:
                run(["git", "push", "-q", "origin", "main"], cwd=clone)

            cpu0 = cpu.seconds()
            first = serve.build_of(push, bare, args.timeout)
            cpu1 = cpu.seconds()
            if cpu0 is not None and cpu1 is not None:
                result.first_cpu = cpu1 - cpu0
            result.status, result.first = first.status.value, first.duration  # type: ignore[attr-defined]
            result.sauci = store_counts(
                [t.status for _, t in serve.store.list_test_results(first.id)]
            )  # type: ignore[attr-defined]
            if result.status != "passed":
                print(why_not_passed(serve, first.id))  # type: ignore[attr-defined]

            def push_again(clone: Path = clone) -> None:
                run(["git", "commit", "-q", "--allow-empty", "-m", "rebuild"], cwd=clone)
                push(clone)

            tidied = serve.wait_tidied()
            cpu0 = cpu.seconds()
            warm = serve.build_of(push_again, bare, args.timeout)
            cpu1 = cpu.seconds()
            if cpu0 is not None and cpu1 is not None:
                result.warm_cpu = cpu1 - cpu0
            plain_pytest_again(project, python, tmp / result.project, result)
            result.warm_status, result.warm = warm.status.value, warm.duration  # type: ignore[attr-defined]
            warm_counts = store_counts(
                [t.status for _, t in serve.store.list_test_results(warm.id)]
            )  # type: ignore[attr-defined]
            if warm_counts != result.sauci:
                result.notes.append(f"warm rebuild counted {warm_counts}")
            print(
                f"{result.project}: sauci {result.status} {result.sauci} in {fmt(result.first)} s, "
                f"warm {result.warm_status} in {fmt(result.warm)} s "
                f"(pushed once the slot was tidied: {tidied:.2f} s after the first build)",
                flush=True,
            )
    finally:
        if serve is not None:
            serve.stop()
        cpu.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table(results)
    for result in results:
        print(goal_line(result))
    for result in results:
        for note in result.notes:
            print(f"{result.project}: {note}")
    bad = [r.project for r in results if not r.ok]
    if bad:
        print(
            f"NOT OK: {', '.join(bad)} (a build did not pass, or its counts differ from plain pytest's)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
