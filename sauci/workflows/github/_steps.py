"""A workflow step as the job driver runs it (sauci/workflows/github/jobdriver.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sauci.workflows.github._actions import JobParts, action_name, builtin_action
from sauci.workflows.github._composite import composite_steps
from sauci.workflows.github._context import condition_source, fill_static
from sauci.workflows.github._reading import LMap, Problems, where

__all__ = ["SHELLS", "driver_step", "shell_template"]

SHELLS = {
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
    "python": ["python", "{0}"],
}
_STEP_KEYS = frozenset(
    {
        "name",
        "id",
        "if",
        "run",
        "uses",
        "with",
        "env",
        "shell",
        "working-directory",
        "continue-on-error",
        "timeout-minutes",
    }
)


def shell_template(shell: Any, problems: Problems, at: tuple[int, int]) -> list[str] | None:
    """The command for ``shell:`` (``bash``, ``sh``, ``python`` or a custom ``cmd {0}``)."""
    text = str(shell).strip()
    if text in SHELLS:
        return SHELLS[text]
    if "{0}" in text:
        return text.split()
    problems.add(at, f"shell {text!r} is not supported (bash, sh, python, or a command with {{0}})")
    return None


def driver_step(
    step: Any,
    index: int,
    contexts: Mapping[str, Any],
    parts: JobParts,
    problems: Problems,
    *,
    defaults: Mapping[str, Any],
    workspace: Path | None,
    path: str | None,
    actions: Mapping[str, str] | None,
    depth: int = 0,
) -> list[dict[str, Any]]:
    """The job driver's description of one step (several for a local action); [] on problems."""
    if not isinstance(step, LMap):
        problems.add(where(step), "a step must be a mapping with 'run' or 'uses'")
        return []
    for key in step:
        if key not in _STEP_KEYS:
            problems.add(where(key), f"unknown step key {key!r}")
    env_context = dict(contexts.get("env", {}))
    env: dict[str, str] = {}
    if isinstance(step.get("env"), Mapping):
        for key, value in step["env"].items():
            env[key] = _fill(value, contexts, step["env"].at(key), problems)
        env_context.update(env)
    ctx = {**contexts, "env": env_context}
    out: dict[str, Any] = {"env": env}
    if "id" in step:
        out["id"] = str(step["id"])
    if "if" in step:
        source = condition_source(step["if"])
        out["if"] = source
        out["if_at"] = list(step.at("if"))
        _check_expression(source, step.at("if"), problems)
    if "continue-on-error" in step:
        value = step["continue-on-error"]
        text = _fill(value, ctx, step.at("continue-on-error"), problems)
        # One that reads steps, env set by the job...: the job driver decides it.
        out["continue_on_error"] = text if "${{" in text else (value is True or text == "true")
    if "timeout-minutes" in step:
        minutes = step["timeout-minutes"]
        if isinstance(minutes, (int, float)) and minutes > 0:
            out["timeout"] = float(minutes) * 60
        else:
            problems.add(step.at("timeout-minutes"), "timeout-minutes must be a positive number")
    if ("run" in step) == ("uses" in step):
        problems.add(where(step), "a step needs exactly one of 'run' and 'uses'")
        return []
    for key in ("run", "uses", "id", "shell", "working-directory", "name"):
        if key in step and isinstance(step[key], (list, dict)):
            problems.add(step.at(key), f"a step's {key!r} must be a string")
            return []
    if "with" in step and not isinstance(step["with"], LMap):
        problems.add(step.at("with"), "a step's 'with' must be a mapping of inputs")
        return []
    if "run" in step:
        out.update(kind="run", run=_fill(step["run"], ctx, step.at("run"), problems))
        shell = step.get("shell", defaults.get("shell"))
        if shell is not None:
            template = shell_template(
                shell, problems, step.at("shell") if "shell" in step else (0, 0)
            )
            if template is not None:
                out["shell_template"] = template
        workdir = step.get("working-directory", defaults.get("working-directory"))
        if workdir is not None:
            out["workdir"] = _fill(workdir, ctx, step.at("working-directory"), problems)
        out["name"] = _title(step, ctx, problems) or _first_line(out["run"])
        return [out]
    uses = str(step["uses"])
    out["name"] = _title(step, ctx, problems) or f"Run {uses}"
    if uses.startswith("docker://"):
        problems.add(step.at("uses"), f"'uses: {uses}': Docker actions are not supported")
        return []
    inputs: dict[str, Any] = {}
    given = step.get("with")
    if isinstance(given, LMap):
        for key, value in given.items():
            inputs[key] = _fill(value, ctx, given.at(key), problems, keep_runtime=True)
    if uses.startswith("./"):

        def expand(raw: Any, inner: Mapping[str, Any], found: Problems, level: int) -> list[Any]:
            made = driver_step(
                raw,
                index,
                inner,
                parts,
                found,
                defaults=defaults,
                workspace=workspace,
                path=path,
                actions=actions,
                depth=level,
            )
            for item in made:
                item["env"] = {**env, **item.get("env", {})}
            return made

        return composite_steps(
            uses, step, ctx, inputs, problems, workspace=workspace, expand=expand, depth=depth
        )
    name, _ref = action_name(uses)
    result = builtin_action(name, inputs, parts, workspace=workspace, path=path, mapped=actions)
    if result.problem is not None:
        problems.add(step.at("uses"), result.problem)
        return []
    assert result.step is not None
    out.update({k: v for k, v in result.step.items() if k != "input_env"})
    out["env"] = {**result.step.get("input_env", {}), **env}
    out["name"] = _title(step, ctx, problems) or f"Run {uses}"
    return [out]


def _title(step: LMap, ctx: Mapping[str, Any], problems: Problems) -> str:
    """The step's ``name:`` with what can be known now filled in ('' when it has none)."""
    if not step.get("name"):
        return ""
    return _fill(step["name"], ctx, step.at("name"), problems).strip()


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "Run " + (lines[0].strip() if lines else "")


def _fill(
    value: Any,
    contexts: Mapping[str, Any],
    at: tuple[int, int],
    problems: Problems,
    *,
    keep_runtime: bool = True,
) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    try:
        return fill_static(text, contexts, where(value, at), keep_runtime=keep_runtime)
    except Exception as exc:
        problems.add(_located(exc, where(value, at)), str(getattr(exc, "message", None) or exc))
        return text


def _check_expression(source: str, at: tuple[int, int], problems: Problems) -> None:
    try:
        from sauci.core.expr import parse

        parse(source, line=at[0], col=at[1])
    except ImportError:
        raise
    except Exception as exc:
        problems.add(_located(exc, at), str(getattr(exc, "message", None) or exc))


def _located(exc: Exception, at: tuple[int, int]) -> tuple[int, int]:
    line, col = getattr(exc, "line", None), getattr(exc, "col", None)
    if isinstance(line, int) and isinstance(col, int) and line > 0:
        return line, col
    return at
