"""Real projects under a real `sauci serve`, beside plain pytest (issue 17's acceptance).

    python benchmarks/real_projects.py [--projects six,itsdangerous] [--sandbox NAME]
                                       [--rounds 3] [--warm-rounds 3] [--phases]
                                       [--no-cache] [--keep] [--python PATH]

For each project: its sdist at a pinned version from the package index
(`pip download --no-deps --no-binary :all:`), unpacked into a git repository
with a `.sauci.yml` whose `install` step makes a venv in the workspace and
installs the project and its test dependencies, and whose `test` step runs
pytest with `--junitxml`. One `sauci serve --no-ui` (its default sandbox
unless --sandbox says otherwise) watches the bare repositories; the script
pushes a project, waits for the build (the first build), reads its test
counts from the store, then, once the server has tidied the build's
workspace slot (the seconds it took are printed), pushes an empty commit
(a warm rebuild), --warm-rounds times.

Beside it, plain pytest: the same sdist in a fresh venv made by hand, the
same install and pytest command, in the environment a step gets (no PIP_*
variables) with a fresh HOME: its pip cache starts cold, as the pip cache
of a new repository under serve does.

Rounds: one warm rebuild over one bare pytest timed minutes before it was
0.88x in one run and 1.76x in the next on a shared machine (bare pytest
alone moved by 2x), so each figure is the median of --rounds rounds, each side taken in turns with its bare baseline (the bare
side first in even rounds, SauCI's in odd ones). A round is a bare install
+ pytest and a first build of a repository of its own (so that each first
build starts from nothing: no cache entry, a cold pip cache, a new
workspace slot), then --warm-rounds warm rebuilds in turns with as many
bare pytest runs in that round's venv, each without the project's
bytecode, as a build's fresh checkout.

Counts are the cases of the JUnit report by outcome, passed/failed/skipped
(errors count as failed); pytest's own totals are printed beside them where
they differ (subtests count in those, not in the report). Every round must
count the same.

Prints a row per project with the medians (first build, bare install +
pytest, warm rebuild, bare pytest) and the ratios the issue sets as goals
(first build <= bare install + test + 10%, warm rebuild <= 1.3 x bare
pytest), the rounds' spread, and a goal line per project. Where the script
may make a cgroup-v1 cpuacct group (root), it also prints the CPU time of
each build (the server and every step it ran, sandboxed or not) beside that
of the bare commands: on a shared machine CPU time moves less than wall
time. --phases prints, for every build, where its time went (claim,
checkout, each step with the cache's restore or save, the hand-over of the
workspace and pytest's own time, the gaps, the end, and when the cache's
archive was kept). Exits 1 when a build does not pass or its counts differ
from plain pytest's; the time goals are reported, never enforced (the
machine is shared).

The install step has a `cache:` entry (the venv, keyed on the project's
files, the pipeline and the interpreter's version, with `skip_on_hit`), so
the warm rebuild restores the venv and skips the install's run; --no-cache
leaves it out (every build installs, with pip's download cache).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

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
    """One project's figures, a sample per round: the bare side and SauCI's
    are taken in turns, and compared by their medians."""

    project: str
    status: str = "-"  # "passed" while every first build passed, else the first other status
    sauci: Counts | None = None
    plain: Counts | None = None
    warm_status: str = "-"
    first: list[float] = field(default_factory=list)
    first_cpu: list[float] = field(default_factory=list)  # the server and its steps
    bare_install: list[float] = field(default_factory=list)
    bare_pytest: list[float] = field(default_factory=list)  # right after each bare install
    bare_cpu: list[float] = field(default_factory=list)  # bare install + pytest
    bare_install_cpu: list[float] = field(default_factory=list)  # its parts (--phases)
    bare_pytest_cpu: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    warm_cpu: list[float] = field(default_factory=list)
    # Bare pytest in turns with the warm rebuilds, the project's bytecode
    # removed first: a fresh checkout, as every build's workspace is (the
    # venv's bytecode kept, as restored).
    bare_fresh: list[float] = field(default_factory=list)
    bare_fresh_cpu: list[float] = field(default_factory=list)
    bare_fresh_said: list[float] = field(default_factory=list)  # pytest's own time of it
    # Each build's phases (--phases): {phase: seconds}.
    first_phases: list[dict[str, float]] = field(default_factory=list)
    warm_phases: list[dict[str, float]] = field(default_factory=list)
    counts_differ: bool = False  # a build or a bare round counted otherwise than the first
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.status == "passed"
            and self.warm_status == "passed"
            and not self.counts_differ
            and self.sauci is not None
            and self.sauci == self.plain
        )

    @property
    def bare_total(self) -> list[float]:
        """Bare install + pytest, round by round."""
        return [i + p for i, p in zip(self.bare_install, self.bare_pytest, strict=False)]

    def passed(self, status: str, *, warm: bool) -> None:
        """Record one build's status: the figure stays "passed" only while all are."""
        now = self.warm_status if warm else self.status
        if now in ("-", "passed"):
            now = status
        if warm:
            self.warm_status = now
        else:
            self.status = now

    def counted(self, counts: Counts, *, plain: bool, what: str) -> None:
        """Record one round's counts; a round that counts otherwise is noted."""
        first = self.plain if plain else self.sauci
        if first is None:
            if plain:
                self.plain = counts
            else:
                self.sauci = counts
        elif counts != first:
            self.counts_differ = True
            self.notes.append(f"{what} counted {counts}, not {first}")


def median(samples: Sequence[float]) -> float | None:
    return statistics.median(samples) if samples else None


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


def plain_pytest(
    project: Project, source: Path, python: str, tree: Path, home: Path, result: Result
) -> None:
    """The same install and pytest in a fresh venv in ``tree`` (a fresh copy of
    the sdist), no SauCI, with a fresh ``home``: its pip cache starts cold, as
    the per-repository pip cache of a first build does. One round's counts
    and times."""
    shutil.copytree(source, tree)
    env = step_like_env(home)
    cpu0 = children_cpu()
    t0 = time.monotonic()
    run(["bash", "-eo", "pipefail", "-c", install_command(project, python)], cwd=tree, env=env)
    result.bare_install.append(time.monotonic() - t0)
    cpu1 = children_cpu()
    result.bare_install_cpu.append(cpu1 - cpu0)
    junit = tree / "reports" / "junit.xml"
    t0 = time.monotonic()
    subprocess.run(
        [str(tree / ".venv/bin/python"), *pytest_args(project, str(junit))],
        cwd=tree,
        env=env,
        capture_output=True,
    )
    result.bare_pytest.append(time.monotonic() - t0)
    result.bare_pytest_cpu.append(children_cpu() - cpu1)
    result.bare_cpu.append(children_cpu() - cpu0)
    report = junit.read_text()
    result.counted(junit_counts(report), plain=True, what=f"plain pytest in {tree.name}")
    totals = pytest_totals(report)
    if totals != result.plain and not any("own totals" in note for note in result.notes):
        result.notes.append(
            f"pytest's own totals are {totals}: its subtests count there, while its "
            "JUnit report (and so SauCI) has one case per test"
        )


def plain_pytest_fresh(project: Project, tree: Path, home: Path, result: Result) -> None:
    """Bare pytest once more in the venv of ``tree``, in turn with a warm
    rebuild, the project's ``__pycache__`` directories removed first (not
    the venv's): what a build's fresh checkout starts from. Wall and CPU time."""
    env = step_like_env(home)
    argv = [str(tree / ".venv/bin/python"), *pytest_args(project, str(tree / "reports/again.xml"))]
    for cache in sorted(tree.rglob("__pycache__"), reverse=True):
        if ".venv" not in cache.relative_to(tree).parts:
            shutil.rmtree(cache)
    cpu0, t0 = children_cpu(), time.monotonic()
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
    result.bare_fresh.append(time.monotonic() - t0)
    result.bare_fresh_cpu.append(children_cpu() - cpu0)
    said = re.findall(r" in ([0-9.]+)s\b", done.stdout)
    if said:
        result.bare_fresh_said.append(float(said[-1]))


def children_cpu() -> float:
    """CPU seconds (user and system) of this process's waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_at(samples: Sequence[tuple[float, float]], when: float) -> float:
    """CPU time at ``when`` from (time, CPU time) samples in time order: the
    straight line between the samples around it (the first or last sample
    outside them)."""
    before = [(t, u) for t, u in samples if t <= when]
    after = [(t, u) for t, u in samples if t >= when]
    if not before:
        return after[0][1]
    if not after:
        return before[-1][1]
    (t0, u0), (t1, u1) = before[-1], after[0]
    return u0 if t1 == t0 else u0 + (u1 - u0) * (when - t0) / (t1 - t0)


class CpuMeter:
    """The CPU time of `sauci serve` and everything it starts (its steps
    too, sandboxed or not): a cgroup-v1 cpuacct group made for it. None
    where that cannot be made (not root, no cgroup v1)."""

    BASE = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self) -> None:
        self.path: Path | None = self.BASE / f"sauci-bench-{os.getpid()}"
        self._sampler: threading.Thread | None = None
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, float]] = deque(maxlen=100_000)
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

    def sample(self, interval: float = 0.01) -> None:
        """Read the group's CPU time every ``interval`` s in a thread, so that
        :meth:`at` can say what it was when a build ended: read when the
        script sees the build ended (tens to hundreds of ms later under
        load), it also counted the server's work after the build (the slot's
        tidy, the cache's spare copy), which is off the build's path."""
        if self.path is None or self._sampler is not None:
            return
        self._sampler = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._sampler.start()

    def _sample(self, interval: float) -> None:
        while self.path is not None:
            try:
                usage = self.seconds()
            except OSError:
                return
            if usage is not None:
                with self._lock:
                    self._samples.append((time.time(), usage))
            time.sleep(interval)

    def at(self, when: float, wait: float = 5.0) -> float | None:
        """The group's CPU time at the wall-clock time ``when`` (as the store
        records a build's end), between the samples around it; None when not
        sampled."""
        if self._sampler is None:
            return None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                samples = list(self._samples)
            if samples and samples[-1][0] >= when:
                return cpu_at(samples, when)
            time.sleep(0.01)
        return None

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
        cpu.sample()
        from sauci.storage import open_store

        self.store = open_store(f"sqlite:///{data / 'sauci.db'}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def own_cpu(self) -> float | None:
        """CPU seconds of the server's own threads (not the processes it
        starts): what SauCI itself spends, pumping output, reading reports."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def build_of(self, push: Callable[[], None], repo: Path, timeout: float) -> Any:
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

    def phases(self, build: Any) -> list[tuple[str, float | None, str]]:
        """Where ``build``'s time went (see :func:`phase_parts`)."""
        steps = self.store.list_steps(build.id)
        logs = {
            s.name: self.store.read_log(build.id, s.name).decode(errors="replace") for s in steps
        }
        return phase_parts(build, steps, logs, self.output())

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


# -- where a build's time went (--phases) ----------------------------------------

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z) \[\w+\s*\] (\w+) (.*)$")


def server_events(log_text: str, *names: str) -> list[tuple[float, str, str]]:
    """The server's log lines of the events ``names``: (time, event, the rest)."""
    found = []
    for line in log_text.splitlines():
        match = _LOG_LINE.match(line)
        if match and match.group(2) in names:
            at = datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()
            found.append((at, match.group(2), match.group(3)))
    return found


def phase_parts(
    build: Any, steps: Sequence[Any], logs: dict[str, str], server_log: str
) -> list[tuple[str, float | None, str]]:
    """Where one build's time went, as (phase, seconds, detail), from its
    records in the store (claim, checkout, each step, the gaps, the end),
    its steps' logs (the cache's restore or save, pytest's own time: the
    rest of a test step is the sandbox, the interpreter's start, pytest's
    imports and the JUnit read) and the server's log (when the workspace
    was handed to a step's uid, and when the cache's archive was kept: off
    the build's path, but beside its later steps)."""
    parts: list[tuple[str, float | None, str]] = [("claim", build.started_at - build.queued_at, "")]
    previous = build.started_at
    keys: set[str] = set()  # saved by this build
    events = server_events(server_log, "workspace_files_not_adopted", "cache_saved")
    for s in steps:
        if s.started_at is None or s.finished_at is None:
            parts.append((s.name, None, ""))
            continue
        gap = "checkout" if previous == build.started_at else "gap"
        parts.append((gap, s.started_at - previous, ""))
        detail = []
        text = logs.get(s.name, "")
        cache = re.search(r"^sauci: cache: (hit|saved)[^(\n]*\(([^);\n]*)", text, re.M)
        if cache:
            detail.append(f"cache {cache.group(1)} {cache.group(2)}")
        saved = re.search(r"^sauci: cache: saved (\S+)", text, re.M)
        if saved:
            keys.add(saved.group(1))
        for at, event, _ in events:
            if event == "workspace_files_not_adopted" and s.started_at <= at <= s.finished_at:
                detail.append(f"handed over at +{at - s.started_at:.3f}")
                break
        said = re.findall(r" in ([0-9.]+)s\b", text)
        if said:
            detail.append(f"pytest says {said[-1]}")
        parts.append((s.name, s.finished_at - s.started_at, ", ".join(detail)))
        if said:
            outside = s.finished_at - s.started_at - float(said[-1])
            parts.append((f"{s.name} outside pytest", outside, ""))
        previous = s.finished_at
    parts.append(("end", build.finished_at - previous, ""))
    kept = False
    for at, event, rest in events:
        mine = f"repo={build.repo} " in rest and any(f"key={key} " in rest for key in keys)
        if event == "cache_saved" and mine:
            kept = True
            took = re.search(r"seconds=([0-9.]+)", rest)
            when = at - build.finished_at
            where = f"{-when:.3f} s before the build's end" if when < 0 else f"{when:.3f} s after"
            parts.append(("archive", float(took.group(1)) if took else None, f"kept {where}"))
    if keys and not kept:
        parts.append(("archive", None, "not yet kept"))  # still being written, or failed
    return parts


def step_cpu(
    cpu: CpuMeter, cpu0: float | None, build: Any, steps: Sequence[Any]
) -> dict[str, float]:
    """The CPU time of the server and its steps (the cpuacct group, sampled)
    over each part of ``build``: ``before cpu`` from the push (``cpu0``) to
    its first step's start (the hook, the claim, the checkout), ``<step>
    cpu`` over each step (the sandbox's start, the step's processes, the
    cache's restore or save, and whatever the server did meanwhile), ``after
    cpu`` from its last step's end to the build's end (the report's read).
    Empty when the group is not sampled."""
    ran = [s for s in steps if s.started_at is not None and s.finished_at is not None]
    if cpu0 is None or not ran:
        return {}
    marks = [("before", cpu0)]
    for s in ran:
        start, end = cpu.at(s.started_at), cpu.at(s.finished_at)
        if start is None or end is None:
            return {}
        marks += [(s.name, start), ("", end)]
    done = cpu.at(build.finished_at)
    if done is None:
        return {}
    marks[-1] = ("after", marks[-1][1])  # the last step's end, to the build's
    marks.append(("", done))
    return {f"{name} cpu": until - at for (name, at), (_, until) in pairwise(marks) if name}


def phases(build: Any, steps: Sequence[Any], logs: dict[str, str], server_log: str) -> str:
    """:func:`phase_parts` in one line."""
    line = []
    for name, seconds, detail in phase_parts(build, steps, logs, server_log):
        if name.endswith(" outside pytest"):
            continue  # said by the step's "pytest says"
        said = name if seconds is None else f"{name} {seconds:.3f}"
        line.append(f"{said} ({detail})" if detail else said)
    return "; ".join(line)


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


def spread(samples: Sequence[float]) -> str:
    """``1.02-1.31`` (a single sample as it is)."""
    if not samples:
        return "-"
    low, high = min(samples), max(samples)
    return fmt(low) if len(samples) == 1 else f"{fmt(low)}-{fmt(high)}"


def pair_ratios(got: Sequence[float], base: Sequence[float]) -> list[float]:
    """Each round's figure over the bare baseline taken beside it."""
    return [g / b for g, b in zip(got, base, strict=False) if b]


def print_table(results: Sequence[Result]) -> None:
    head = (
        "project",
        "status",
        "sauci p/f/s",
        "pytest p/f/s",
        "rounds",
        "first s",
        "bare inst+test s",
        "first/bare",
        "first cpu s",
        "bare cpu s",
        "cpu first/bare",
        "warm s",
        "bare pytest s",
        "warm/pytest",
        "warm cpu s",
        "pytest cpu s",
        "cpu warm/pytest",
    )
    rows = [head]
    for r in results:
        m = median
        rows.append(
            (
                r.project,
                r.status if r.status == r.warm_status else f"{r.status}/{r.warm_status}",
                str(r.sauci or "-"),
                str(r.plain or "-"),
                f"{len(r.first)}+{len(r.warm)}",
                fmt(m(r.first)),
                fmt(m(r.bare_total)),
                ratio(m(r.first), m(r.bare_total)),
                fmt(m(r.first_cpu)),
                fmt(m(r.bare_cpu)),
                ratio(m(r.first_cpu), m(r.bare_cpu)),
                fmt(m(r.warm)),
                fmt(m(r.bare_fresh)),
                ratio(m(r.warm), m(r.bare_fresh)),
                fmt(m(r.warm_cpu)),
                fmt(m(r.bare_fresh_cpu)),
                ratio(m(r.warm_cpu), m(r.bare_fresh_cpu)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(
        "medians of the rounds (rounds: first builds + warm rebuilds), each beside its bare"
        " baseline taken in turns with it: bare install + test in a fresh venv with a cold pip"
        " cache, then bare pytest without the project's __pycache__ (as a build's fresh"
        " checkout); cpu: the server and its steps, against the bare commands'"
    )
    for r in results:
        firsts = pair_ratios(r.first, r.bare_total)
        warms = pair_ratios(r.warm, r.bare_fresh)
        print(
            f"{r.project}, round by round: first {spread(r.first)} s, bare {spread(r.bare_total)} s,"
            f" first/bare {spread(firsts)}x (median {ratio(median(firsts), 1)}); warm"
            f" {spread(r.warm)} s, bare pytest {spread(r.bare_fresh)} s, warm/pytest"
            f" {spread(warms)}x (median {ratio(median(warms), 1)}; bare pytest right"
            f" after each bare install, a single run as the baseline was before:"
            f" {spread(r.bare_pytest)} s)"
        )


FIRST_GOAL = 1.10  # first build <= bare install + test + 10%
WARM_GOAL = 1.3  # warm rebuild <= 1.3 x bare pytest


def goal_line(r: Result) -> str:
    """One line per project: each figure (a median), its bare baseline from
    the same run (the median of the rounds taken in turns with it), the goal."""

    def part(what: str, got: float | None, base: float | None, of: str, goal: float) -> str:
        if got is None or not base:
            return f"{what} -"
        verdict = "met" if got / base <= goal else "MISSED"
        return (
            f"{what} {got:.2f} s / {of} {base:.2f} s = {got / base:.2f}x "
            f"(goal <= {goal:.2f}x: {verdict})"
        )

    m = median
    return "; ".join(
        (
            f"{r.project}: "
            + part("first build", m(r.first), m(r.bare_total), "bare install + test", FIRST_GOAL),
            part("in CPU", m(r.first_cpu), m(r.bare_cpu), "bare", FIRST_GOAL),
            part("warm rebuild", m(r.warm), m(r.bare_fresh), "bare pytest", WARM_GOAL),
            part("in CPU", m(r.warm_cpu), m(r.bare_fresh_cpu), "bare", WARM_GOAL),
        )
    )


def phase_medians(r: Result) -> str:
    """Each phase's median over the first builds and over the warm rebuilds,
    and bare pytest's beside them (its wall time, and what is outside the
    time pytest reports: the interpreter's start, its imports)."""

    def medians(builds: Sequence[dict[str, float]]) -> str:
        names = list(dict.fromkeys(n for b in builds for n in b))
        return ", ".join(
            f"{n} {statistics.median(b[n] for b in builds if n in b):.3f}" for n in names
        )

    outside = [w - said for w, said in zip(r.bare_fresh, r.bare_fresh_said, strict=False)]
    bare = f"bare pytest {fmt(median(r.bare_fresh))}" + (
        f", outside pytest {median(outside):.3f}" if outside else ""
    )
    if r.bare_install_cpu and any("install cpu" in b for b in r.first_phases):
        # Beside the first builds' step CPU: the bare install's, and its first
        # pytest's (a fresh venv: the project's bytecode written, as a first build's).
        bare += (
            f"; bare install {fmt(median(r.bare_install))} s, cpu"
            f" {median(r.bare_install_cpu):.3f}; bare pytest after it"
            f" {fmt(median(r.bare_pytest))} s, cpu {median(r.bare_pytest_cpu):.3f}"
        )
    return (
        f"{r.project}, phases: medians of {len(r.first_phases)} first builds: "
        f"{medians(r.first_phases)}; of {len(r.warm_phases)} warm rebuilds: "
        f"{medians(r.warm_phases)}; {bare}"
    )


def in_turns(index: int, bare: Callable[[], None], sauci: Callable[[], None]) -> None:
    """Round ``index``'s two sides, the bare one first in even rounds, SauCI's
    in odd ones: a drift of the machine's load during a run falls on both."""
    for side in (bare, sauci) if index % 2 == 0 else (sauci, bare):
        side()


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
        "--rounds",
        type=int,
        default=3,
        help="first builds per project, each of a repository of its own, in turns with"
        " as many bare installs + pytest (default 3); the figures are their medians",
    )
    parser.add_argument(
        "--warm-rounds",
        type=int,
        default=3,
        help="warm rebuilds after each first build, in turns with as many bare pytest"
        " runs (default 3)",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="print where each build's time went: claim, checkout, each step (the cache's"
        " restore or save, the hand-over, pytest's own time), the gaps, the end, the archive",
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
    if args.rounds < 1 or args.warm_rounds < 1:
        parser.error("--rounds and --warm-rounds take 1 or more")
    # A sandbox sees the system's interpreter, not one under /root (pyenv).
    python = args.python or (
        "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    )
    tmp = Path(tempfile.mkdtemp(prefix="sauci-real-"))
    tmp.chmod(0o755)  # the namespace sandbox's uid walks to the workspaces
    results = [Result(project=n) for n in names]
    print(
        f"real projects: {', '.join(names)}; sandbox {args.sandbox or '(serve default)'}; "
        f"python {python}; sauci from {args.sauci_root}; {args.rounds} round(s) of"
        f" {args.warm_rounds} warm rebuild(s); load {os.getloadavg()[0]:.2f}; in {tmp}",
        flush=True,
    )
    serve = None
    cpu = CpuMeter()
    try:
        sources: dict[str, Path] = {}
        bares: dict[tuple[str, int], Path] = {}
        for name in names:
            project = PROJECTS[name]
            if project.deselect:
                print(f"{name}: deselected {', '.join(project.deselect)}")
            sources[name] = download(project, tmp / name / "sdist")
            for index in range(args.rounds):
                # A repository per round: each first build starts from nothing
                # (no cache entry, a cold pip cache, a new workspace slot).
                bare = tmp / "repos" / f"{name}-{index + 1}.git"
                run(["git", "init", "-q", "--bare", "-b", "main", str(bare)])
                bares[name, index] = bare
        serve = Serve(
            tmp / "data", list(bares.values()), args.sandbox, cpu, sauci_argv(args.sauci_root)
        )
        for index in range(args.rounds):
            for result in results:
                one_round(serve, cpu, args, python, tmp, sources, bares, result, index)
    finally:
        if serve is not None:
            serve.stop()
        cpu.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    print()
    print_table(results)
    for result in results:
        print(goal_line(result))
    if args.phases:
        for result in results:
            print(phase_medians(result))
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


def one_round(
    serve: Serve,
    cpu: CpuMeter,
    args: argparse.Namespace,
    python: str,
    tmp: Path,
    sources: dict[str, Path],
    bares: dict[tuple[str, int], Path],
    result: Result,
    index: int,
) -> None:
    """One project's round: a bare install + pytest and a first build in
    turns, then warm rebuilds in turns with bare pytest."""
    project, bare = PROJECTS[result.project], bares[result.project, index]
    work = tmp / result.project
    plain = work / f"plain-{index + 1}"
    home = work / f"plain-home-{index + 1}"  # cold, as the new repository's pip cache
    clone = work / f"repo-{index + 1}"
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

    def push() -> None:
        run(["git", "push", "-q", "origin", "main"], cwd=clone)

    def push_again() -> None:
        run(["git", "commit", "-q", "--allow-empty", "-m", "rebuild"], cwd=clone)
        push()

    def measured(push: Callable[[], None], warm: bool) -> None:
        cpu0, own0 = cpu.seconds(), serve.own_cpu()
        build = serve.build_of(push, bare, args.timeout)
        seen, own1 = cpu.seconds(), serve.own_cpu()
        cpu1 = cpu.at(build.finished_at)  # not the server's tidy after it
        if cpu0 is not None and cpu1 is not None:
            (result.warm_cpu if warm else result.first_cpu).append(cpu1 - cpu0)
        (result.warm if warm else result.first).append(build.duration)
        result.passed(build.status.value, warm=warm)
        statuses = [t.status for _, t in serve.store.list_test_results(build.id)]
        what = f"{'warm rebuild' if warm else 'first build'} #{build.id}"
        result.counted(store_counts(statuses), plain=False, what=what)
        if build.status.value != "passed":
            print(why_not_passed(serve, build.id))
        if args.phases:
            parts = serve.phases(build)
            line = "; ".join(
                (f"{n} {v:.3f}" if v is not None else n) + (f" ({d})" if d else "")
                for n, v, d in parts
                if not n.endswith(" outside pytest")
            )
            if cpu0 is not None and cpu1 is not None and seen is not None:
                line += f"; cpu {cpu1 - cpu0:.3f} (+{seen - cpu1:.3f} by the time seen ended)"
            shares = step_cpu(cpu, cpu0, build, serve.store.list_steps(build.id))
            if own0 is not None and own1 is not None:
                shares["server's own cpu"] = own1 - own0  # to when the build was seen ended
            if shares:
                line += " (" + ", ".join(f"{n} {v:.3f}" for n, v in shares.items()) + ")"
            print(f"{result.project}, {what}: {line}", flush=True)
            times = {n: v for n, v, _ in parts if v is not None and n not in ("archive",)}
            times.update(shares)
            (result.warm_phases if warm else result.first_phases).append(times)

    in_turns(
        index,
        lambda: plain_pytest(project, sources[result.project], python, plain, home, result),
        lambda: measured(push, warm=False),
    )
    tidied = []
    for turn in range(args.warm_rounds):

        def warm() -> None:
            tidied.append(serve.wait_tidied())
            measured(push_again, warm=True)

        in_turns(turn, lambda: plain_pytest_fresh(project, plain, home, result), warm)
    print(
        f"{result.project}, round {index + 1}: sauci {result.status} {result.sauci} in"
        f" {fmt(result.first[-1])} s (bare {fmt(result.bare_total[-1])} s), warm"
        f" {result.warm_status} in {', '.join(fmt(w) for w in result.warm[-args.warm_rounds :])} s"
        f" (bare pytest {', '.join(fmt(b) for b in result.bare_fresh[-args.warm_rounds :])} s;"
        f" pushed once the slot was tidied: {', '.join(f'{t:.2f}' for t in tidied)} s after"
        f" the build before); load {os.getloadavg()[0]:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
