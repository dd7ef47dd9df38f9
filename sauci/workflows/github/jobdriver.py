"""Runs one GitHub Actions job (one matrix entry) inside a sandbox: the job's steps in order.

A SauCI step runs this file with ``python3 -c <this source> <job JSON>``;
it uses the standard library only, since a sandbox may not have SauCI
installed. It gives each step what a GitHub runner gives it: the
``GITHUB_ENV``, ``GITHUB_PATH``, ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``
files (read back after the step, for the steps after it), the ``GITHUB_*``
and ``RUNNER_*`` variables, ``shell`` and ``working-directory``, a step's
``continue-on-error`` and ``timeout-minutes``, and its ``if:`` decided from
whether an earlier step failed (the front end evaluated the rest). The
plan-time front end imports :func:`find_python` from here, so a missing
interpreter is found before the build starts, the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

if __name__ != "__main__":  # imported; run through `python -c`, pythons.py's source came first
    from sauci.workflows.github.artifactfiles import (
        artifact_step,
        entry_outputs,
        write_entry_outputs,
    )
    from sauci.workflows.github.pythons import activate_python
    from sauci.workflows.github.runnerfiles import hash_files, parse_env_file

__all__ = ["hash_files", "main", "parse_env_file"]

_STATUS = re.compile(r"\b(success|failure|always|cancelled)\s*\(")
_SHELLS = {
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
    "python": ["python", "{0}"],
}


class _Job:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.workspace = os.getcwd()
        self.temp = tempfile.mkdtemp(prefix="sauci-gha-")
        self.env = dict(os.environ)
        self.paths: list[str] = []
        self.steps: dict[str, dict[str, Any]] = {}
        self.failed = False
        self.summary: list[str] = []
        self.added_env: dict[str, str] = {}
        self.expr: Any = None
        ref = self.env.get("SAUCI_REF", "")
        branch = self.env.get("SAUCI_BRANCH", "")
        self.env.update(
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_WORKSPACE=self.workspace,
            GITHUB_SHA=self.env.get("SAUCI_SHA", ""),
            GITHUB_REF=ref
            if ref.startswith("refs/")
            else (f"refs/heads/{branch}" if branch else ref),
            GITHUB_REF_NAME=branch or ref,
            GITHUB_EVENT_NAME=spec.get("event_name", "push"),
            GITHUB_REPOSITORY=spec.get("repository", ""),
            GITHUB_WORKFLOW=spec.get("workflow", ""),
            GITHUB_JOB=spec.get("job", ""),
            GITHUB_RUN_ID=self.env.get("SAUCI_BUILD_ID", "0"),
            GITHUB_RUN_NUMBER=self.env.get("SAUCI_BUILD_ID", "0"),
            GITHUB_RUN_ATTEMPT="1",
            GITHUB_SERVER_URL="https://github.com",
            RUNNER_OS="Linux",
            RUNNER_ARCH="X64" if os.uname().machine in ("x86_64", "amd64") else "ARM64",
            RUNNER_TEMP=self.temp,
            RUNNER_TOOL_CACHE=os.path.join(self.workspace, ".sauci-gha", "tools"),
        )
        self.env.update(spec.get("env", {}))

    def expressions(self) -> Any:
        """SauCI's expression language (sauci.core.expr), imported only when a step needs it."""
        if self.expr is None:
            root = self.spec["expr_path"]
            if "sauci" not in sys.modules:
                # Only the expression language (and sauci.exceptions) is loaded,
                # not SauCI's package start-up (its app, stores...): 0.2 s less
                # in every job that has an expression to evaluate.
                import types

                for name, folder in (("sauci", "sauci"), ("sauci.core", "sauci/core")):
                    package = types.ModuleType(name)
                    package.__path__ = [os.path.join(root, folder)]
                    sys.modules[name] = package
            sys.path.insert(0, root)
            from sauci.core import expr

            self.expr = expr
        return self.expr

    def contexts(self, step_env: dict[str, str]) -> dict[str, Any]:
        contexts = dict(self.spec.get("contexts", {}))
        # Known only here: the entry's own workspace copy and temp folder.
        contexts["github"] = {
            **contexts.get("github", {}),
            "workspace": self.workspace,
            "run_id": self.env["GITHUB_RUN_ID"],
            "run_number": self.env["GITHUB_RUN_NUMBER"],
        }
        contexts["runner"] = {
            **contexts.get("runner", {}),
            "temp": self.temp,
            "tool_cache": self.env["RUNNER_TOOL_CACHE"],
        }
        contexts.update(
            env={**self.spec.get("env", {}), **self.added_env, **step_env},
            steps=self.steps,
            job={
                "status": "failure" if self.failed else "success",
                "services": self.spec.get("services", {}),
            },
            needs=self.needs(),
            secrets={name: os.environ.get(name, "") for name in self.spec.get("secrets", [])},
        )
        return contexts

    def functions(self) -> dict[str, Any]:
        return {
            "success": lambda: not self.failed,
            "failure": lambda: self.failed,
            "always": lambda: True,
            "cancelled": lambda: False,
            "hashFiles": lambda *globs: hash_files(self.workspace, globs),
        }

    def fill(self, text: str, step_env: dict[str, str] | None = None) -> str:
        """Put in the ``${{ }}`` values only known now (``steps.<id>.outputs.<name>``, ``env``)."""
        if "${{" not in text:
            return text
        expr = self.expressions()
        return str(expr.interpolate(text, self.contexts(step_env or {}), self.functions()))

    def wanted(self, step: dict[str, Any], step_env: dict[str, str]) -> bool:
        """Whether the step's ``if:`` (default ``success()``) holds now."""
        source = step.get("if")
        if not source:
            return not self.failed
        if not _STATUS.search(source):
            source = f"success() && ({source})"
        expr = self.expressions()
        line, col = step.get("if_at", [1, 1])
        value = expr.evaluate(source, self.contexts(step_env), self.functions(), line=line, col=col)
        return bool(expr.truthy(value))

    def needs(self) -> dict[str, Any]:
        """The jobs this one needs: each passed (or it would not run), with the outputs it left."""
        found: dict[str, Any] = {}
        for job in self.spec.get("needs", []):
            path = os.path.join(self.workspace, ".sauci-gha", "outputs", f"{_safe(job)}.json")
            try:
                with open(path, encoding="utf-8") as fh:
                    outputs = json.load(fh)
            except (OSError, ValueError):  # none here: a matrix job's, from its entries
                outputs = entry_outputs(
                    self.workspace, self.spec.get("need_entries", {}).get(job, [])
                )
            found[job] = {
                "result": "success",
                "outputs": outputs if isinstance(outputs, dict) else {},
            }
        return found

    def write_outputs(self) -> None:
        """The job's ``outputs``, evaluated now, where the jobs that need it read them."""
        outputs = self.spec.get("outputs") or {}
        if not outputs:
            return
        values = {}
        for name, text in outputs.items():
            try:
                values[name] = self.fill(text)
            except Exception as exc:  # the expression language's errors, located
                print(f"sauci: job output {name!r}: {exc}", flush=True)
        folder = os.path.join(self.workspace, ".sauci-gha", "outputs")
        os.makedirs(folder, exist_ok=True)
        with open(
            os.path.join(folder, f"{_safe(self.spec['job'])}.json"), "w", encoding="utf-8"
        ) as fh:
            json.dump(values, fh)
        if self.spec.get("matrix_entry"):
            write_entry_outputs(folder, self.spec["job"], values)

    def run(self) -> int:
        for name, value in self.spec.get("env", {}).items():
            if "${{" in value:  # secrets.X, hashFiles(...): known only now
                try:
                    self.env[name] = self.fill(value)
                except Exception as exc:  # the expression language's errors, located
                    print(f"sauci: env {name}: {exc}", flush=True)
                    return 1
        for step in self.spec["steps"]:
            self.step(step)
        self.write_outputs()
        if self.summary:
            print("\n=== job summary (GITHUB_STEP_SUMMARY) ===")
            print("\n".join(self.summary))
            # Kept with the build's artifacts (the front end names this path).
            folder = os.path.join(self.workspace, ".sauci-gha", _safe(self.spec.get("job", "job")))
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "step-summary.md"), "w", encoding="utf-8") as fh:
                fh.write("\n\n".join(self.summary) + "\n")
        shutil.rmtree(self.temp, ignore_errors=True)
        return 1 if self.failed else 0

    def step(self, step: dict[str, Any]) -> None:
        name = step["name"]
        step_env = dict(step.get("env", {}))
        try:
            step_env = {k: self.fill(v, step_env) for k, v in step_env.items()}
            wanted = self.wanted(step, step_env)
        except Exception as exc:  # the expression language's errors, located
            print(f"\n=== {name}: {self.spec.get('file', '')}:{exc}", flush=True)
            self.failed = True
            self.record(step, "failure", {})
            return
        if not wanted:
            why = f"if: {step['if']}" if step.get("if") else "an earlier step failed"
            print(f"\n=== {name}: skipped ({why})", flush=True)
            self.record(step, "skipped", {})
            return
        print(f"\n=== {name}", flush=True)
        kind = step["kind"]
        if kind == "note":
            print(step["note"], flush=True)
            # What SauCI did before the job started, e.g. actions/cache's cache-hit.
            told = step.get("outputs_from_env", {})
            self.record(step, "success", {k: self.env.get(v, "false") for k, v in told.items()})
            return
        started = time.monotonic()
        files = {
            k: os.path.join(self.temp, f"{k}-{len(self.steps)}-{id(step)}")
            for k in ("env", "path", "output", "summary")
        }
        for f in files.values():
            open(f, "w").close()
        env = dict(self.env)
        env.update(step_env)
        env["PATH"] = os.pathsep.join([*reversed(self.paths), env.get("PATH", "")])
        env.update(
            GITHUB_ENV=files["env"],
            GITHUB_PATH=files["path"],
            GITHUB_OUTPUT=files["output"],
            GITHUB_STEP_SUMMARY=files["summary"],
            GITHUB_ACTION=step.get("id") or "",
        )
        if self.spec.get("junit"):
            # pytest writes a JUnit report SauCI reads, so the tests show in the
            # build page; a --junitxml of the workflow's own comes later and wins.
            report = os.path.join(self.junit_dir(), f"step-{len(self.steps)}-{id(step)}.xml")
            env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} --junitxml={report}".strip()
        if kind in ("upload", "download"):
            code = self.artifacts(step, env, files)
        else:
            code = (
                self.setup_python(step, env, files) if kind == "python" else self.shell(step, env)
            )
        with open(files["env"], encoding="utf-8") as fh:
            added = parse_env_file(fh.read())
            self.env.update(added)
            self.added_env.update(added)
        with open(files["path"], encoding="utf-8") as fh:
            self.paths += [p.strip() for p in fh.read().splitlines() if p.strip()]
        with open(files["output"], encoding="utf-8") as fh:
            outputs = parse_env_file(fh.read())
        with open(files["summary"], encoding="utf-8") as fh:
            if text := fh.read().strip():
                self.summary.append(text)
        outcome = "success" if code == 0 else "failure"
        seconds = time.monotonic() - started
        tolerated = self.tolerated(step, step_env)
        if code != 0:
            print(
                f"=== {name}: failed with exit code {code} after {seconds:.1f} s"
                + (" (continue-on-error)" if tolerated else ""),
                flush=True,
            )
            if not tolerated:
                self.failed = True
        self.record(step, outcome, outputs, conclusion="success" if tolerated else outcome)

    def tolerated(self, step: dict[str, Any], step_env: dict[str, str]) -> bool:
        """The step's ``continue-on-error``; an expression the plan left is evaluated now."""
        value = step.get("continue_on_error", False)
        if not isinstance(value, str):
            return bool(value)
        try:
            return self.fill(value, step_env).strip() == "true"
        except Exception as exc:  # the expression language's errors, located
            print(f"sauci: continue-on-error: {exc}", flush=True)
            return False

    def junit_dir(self) -> str:
        folder = os.path.join(
            self.workspace, ".sauci-gha", _safe(self.spec.get("job", "job")), "junit"
        )
        os.makedirs(folder, exist_ok=True)
        return folder

    def record(
        self,
        step: dict[str, Any],
        outcome: str,
        outputs: dict[str, str],
        conclusion: str | None = None,
    ) -> None:
        if step.get("id"):
            self.steps[step["id"]] = {
                "outcome": outcome,
                "conclusion": conclusion or outcome,
                "outputs": outputs,
            }

    def shell(self, step: dict[str, Any], env: dict[str, str]) -> int:
        try:
            script = self.fill(step["run"], env)
        except Exception as exc:  # the expression language's errors, located
            print(f"sauci: {exc}", flush=True)
            return 1
        # No `shell:`: GitHub's `bash -e {0}` (no pipefail), `sh -e {0}` without bash.
        template = step.get("shell_template") or (
            ["bash", "-e", "{0}"] if shutil.which("bash", path=env["PATH"]) else _SHELLS["sh"]
        )
        suffix = ".py" if template[0] in ("python", "python3") else ".sh"
        path = os.path.join(self.temp, f"step-{len(self.steps)}-{id(step)}{suffix}")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(script + "\n")
        argv = [part.replace("{0}", path) for part in template]
        cwd = os.path.join(self.workspace, self.fill(step.get("workdir") or "", env))
        exe = shutil.which(argv[0], path=env["PATH"])
        if exe is None:
            print(f"sauci: the shell {argv[0]!r} is not on PATH", flush=True)
            return 127
        try:
            proc = subprocess.Popen([exe, *argv[1:]], cwd=cwd, env=env, start_new_session=True)
        except OSError as exc:
            print(f"sauci: cannot start {argv[0]!r} in {cwd}: {exc}", flush=True)
            return 127
        try:
            return proc.wait(timeout=step.get("timeout"))
        except subprocess.TimeoutExpired:
            print("sauci: the step took longer than its timeout-minutes; ended", flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return 124

    def artifacts(self, step: dict[str, Any], env: dict[str, str], files: dict[str, str]) -> int:
        """upload-artifact's index, or download-artifact's files (artifactfiles.py)."""
        inbox = os.path.join(self.workspace, self.spec.get("artifacts_in", ""))
        job = self.spec.get("job", "job")
        fill = lambda text: self.fill(text, env)  # noqa: E731
        return artifact_step(step, fill, self.workspace, job, inbox, files["output"])

    def setup_python(self, step: dict[str, Any], env: dict[str, str], files: dict[str, str]) -> int:
        # Per job: jobs without a matrix share the build's workspace and may run at once.
        folder = os.path.join(self.workspace, ".sauci-gha", _safe(self.spec.get("job", "job")))
        return activate_python(self.fill(step["version"], env), folder, env, files)


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)[:80] or "_"


def main(argv: list[str]) -> int:
    """Run the job described by the JSON in ``argv[-1]``; exit 1 when a step failed."""
    return _Job(json.loads(argv[-1])).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
