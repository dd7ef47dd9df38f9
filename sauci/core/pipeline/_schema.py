"""The keys of ``.sauci.yml`` and what each accepts, read from nodes into step specs.

A :class:`StepSpec` is one entry of ``steps`` as written: checked key by key
but not yet expanded (matrix) or linked (needs); ``_build`` does that.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
from collections.abc import Callable
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sauci.core.models import Limits, Service, When, service_name_problem
from sauci.core.pipeline._matrix import Matrix, read_matrix
from sauci.core.pipeline._nodes import (
    FLOAT,
    INT,
    NULL,
    STR,
    TEXT_TAGS,
    Checker,
    describe,
    did_you_mean,
    is_identifier,
)
from sauci.core.pipeline._units import (
    DURATION_EXAMPLES,
    SIZE_EXAMPLES,
    format_duration,
    parse_duration,
    parse_size,
)

__all__ = ["EVENTS", "STEP_KEYS", "TOP_KEYS", "Reader", "StepSpec", "path_problem"]

TOP_KEYS = ("env", "runs_on", "schedule", "steps", "version")
STEP_KEYS = (
    "allow_failure",
    "artifacts",
    "env",
    "image",
    "junit",
    "limits",
    "matrix",
    "matrix_values",
    "name",
    "needs",
    "network",
    "retries",
    "retry_on",
    "run",
    "sandbox",
    "secrets",
    "services",
    "shell",
    "timeout",
    "weight",
    "when",
    "workdir",
)
LIMIT_KEYS = ("cpu", "memory", "processes")
SERVICE_KEYS = ("command", "env", "image", "name", "ready", "ready_timeout")
WHEN_KEYS = ("branches", "events")
EVENTS = ("cli", "cron", "manual", "push", "rerun", "tag", "webhook")

# An absolute ceiling whatever max_timeout says: beyond it, timers in the
# sandboxes overflow (threading.Timer(1e300) raises OverflowError).
TIMEOUT_CEILING = 30 * 24 * 3600.0
MAX_MEMORY = 2**63 - 1
MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]")


class StepSpec:
    """One entry of ``steps`` as written, with the nodes needed to locate problems."""

    __slots__ = (
        "base",
        "expanded",
        "fields",
        "has_matrix",
        "image",
        "index",
        "label",
        "matrix",
        "matrix_values",
        "name_node",
        "needs",
        "node",
        "run",
        "template",
        "workdir",
    )

    def __init__(self, node: MappingNode, index: int, label: str) -> None:
        self.node = node
        self.index = index  # 1-based position in the file
        self.label = label  # "step 'test'" or "step #3", for messages
        self.base: str | None = None  # the name that needs refer to
        self.name_node: Node | None = None
        self.template: tuple[str, Node] | None = None  # name pattern of matrix expansions
        self.run: list[tuple[str, Node]] | None = None
        self.image: tuple[str, Node] | None = None
        self.workdir: tuple[str, Node] | None = None
        self.needs: list[tuple[str, Node]] | None = None  # None: the default
        self.matrix: Matrix | None = None
        self.has_matrix = False  # True even when the matrix was wrong
        self.matrix_values: dict[str, str] | None = None
        self.fields: dict[str, Any] = {}  # the Step keyword arguments needing no expansion
        self.expanded: list[dict[str, Any]] = []  # filled in by _build


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a path inside the workspace, or None."""
    if not path.strip():
        return "is empty"
    slashed = path.replace("\\", "/")
    if slashed.startswith("/") or _WINDOWS_ABSOLUTE.match(path):
        return "must be relative to the workspace, not absolute"
    normal = posixpath.normpath(slashed)
    if normal == ".." or normal.startswith("../"):
        return "leaves the workspace through '..'"
    return None


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a step, or None."""
    if not name.strip():
        return "is empty"
    if name != name.strip():
        return "has spaces at the start or end"
    if _CONTROL.search(name):
        return "holds a control character such as a newline or a tab"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    return None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL


_Handler = Callable[["Reader", StepSpec, str, Node], None]


class Reader:
    """Reads the document into the top-level env and step specs."""

    def __init__(self, chk: Checker, max_timeout: float | None) -> None:
        self.chk = chk
        self.max_timeout = max_timeout
        self.schedules: list[tuple[str, str]] = []  # (cron, branch)
        self.runs_on: tuple[str, ...] = ()  # worker labels, sorted and unique

    # -- top level --------------------------------------------------------

    def document(self, root: Node | None) -> tuple[dict[str, str], list[StepSpec]]:
        chk = self.chk
        env: dict[str, str] = {}
        specs: list[StepSpec] = []
        if root is None:
            chk.add((1, 1), "the file is empty; expected a mapping with a 'steps' key")
            return env, specs
        if not isinstance(root, MappingNode):
            if chk.visit(root):
                chk.add(root, f"expected a mapping with a 'steps' key, got {describe(root)}")
            return env, specs
        has_steps = False
        for key, key_node, value in chk.items(root, " at the top level"):
            if key == "steps":
                has_steps = True
                specs = self._steps(value)
            elif _is_null(value):
                continue  # an empty key means its default
            elif key == "env":
                env = self._env(value, "'env'") or {}
            elif key == "version":
                self._version(value)
            elif key == "schedule":
                self._schedule(value)
            elif key == "runs_on":
                self._runs_on(value)
            else:
                chk.unknown_key(key, key_node, " at the top level", TOP_KEYS)
        if not has_steps:
            chk.add(root, "missing key 'steps': a pipeline needs at least one step")
        return env, specs

    def _schedule(self, node: Node) -> None:
        """``schedule: [{cron: "0 3 * * *", branch: main}, ...]``; branch defaults to main."""
        chk = self.chk
        expected = "a list of {cron: '<5 fields>', branch: <name>}"
        if not isinstance(node, SequenceNode):
            if chk.visit(node):
                chk.add(node, f"'schedule': expected {expected}, got {describe(node)}")
            return
        if not chk.visit(node):
            return
        for item in node.value:
            if not isinstance(item, MappingNode):
                if chk.visit(item):
                    chk.add(item, f"'schedule' entry: expected {expected}, got {describe(item)}")
                continue
            cron: str | None = None
            branch = "main"
            has_cron = False
            for key, key_node, value in chk.items(item, " in a 'schedule' entry"):
                if key == "cron":
                    has_cron = True
                    cron = chk.text(value, "'cron'", "a cron expression such as '0 3 * * *'")
                    if cron is not None:
                        from sauci.triggers.cron import CronSchedule

                        try:
                            CronSchedule.parse(cron)
                        except ValueError as exc:
                            chk.add(value, f"'cron': {exc}")
                            cron = None
                elif key == "branch":
                    branch = chk.text(value, "'branch'", "a branch name") or branch
                else:
                    chk.unknown_key(key, key_node, " in a 'schedule' entry", ("branch", "cron"))
            if cron is None:
                if not has_cron:
                    chk.add(item, "a 'schedule' entry needs 'cron'")
                continue
            self.schedules.append((cron, branch))

    def _runs_on(self, node: Node) -> None:
        """``runs_on: linux`` or ``runs_on: [linux, docker]``: a worker needs every label."""
        from sauci.core.config import MAX_LABELS, label_problem

        labels = self.chk.texts(node, "'runs_on'", "a worker label such as 'linux'")
        if labels is None:
            return
        ok = True
        for label, item in labels:
            problem = label_problem(label)
            if problem:
                self.chk.add(item, f"'runs_on': {problem}")
                ok = False
        unique = sorted({label for label, _ in labels})
        if len(unique) > MAX_LABELS:
            self.chk.add(
                node,
                f"'runs_on': {len(unique)} labels; no worker can have more than {MAX_LABELS}",
            )
            ok = False
        if ok:
            self.runs_on = tuple(unique)

    def _version(self, node: Node) -> None:
        if self.chk.visit(node) and not (
            isinstance(node, ScalarNode) and node.tag == INT and node.value == "1"
        ):
            self.chk.add(node, f"'version': this SauCI reads version 1, got {describe(node)}")

    def _steps(self, node: Node) -> list[StepSpec]:
        chk = self.chk
        specs: list[StepSpec] = []
        expected = "a list of steps or a mapping of step names to steps"
        if isinstance(node, SequenceNode):
            if not chk.visit(node):
                return specs
            for index, item in enumerate(node.value, 1):
                if isinstance(item, MappingNode):
                    specs.append(self._step(item, index, None))
                elif chk.visit(item):
                    chk.add(
                        item,
                        f"step #{index}: expected a mapping with 'name' and 'run', "
                        f"got {describe(item)}",
                    )
        elif isinstance(node, MappingNode):
            for index, (name, key, value) in enumerate(chk.items(node, " in 'steps'"), 1):
                if isinstance(value, MappingNode):
                    specs.append(self._step(value, index, (name, key)))
                elif chk.visit(value):
                    chk.add(
                        value,
                        f"step {name!r}: expected a mapping with 'run', got {describe(value)}",
                    )
        elif chk.visit(node):
            chk.add(node, f"'steps': expected {expected}, got {describe(node)}")
            return specs
        if not node.value:
            chk.add(node, "'steps' is empty: a pipeline needs at least one step")
        return specs

    # -- one step ---------------------------------------------------------

    def _step(self, node: MappingNode, index: int, key: tuple[str, Node] | None) -> StepSpec:
        chk = self.chk
        label = f"step {key[0]!r}" if key is not None else _peek_name(node) or f"step #{index}"
        spec = StepSpec(node, index, label)
        if key is not None:
            spec.base, spec.name_node = key
            problem = name_problem(key[0])
            if problem:
                chk.add(key[1], f"the step name {key[0]!r} {problem}")
        where = f" in {label}"
        name_key: Node | None = None
        has_run = False
        for name, key_node, value in chk.items(node, where):
            handler = _STEP_HANDLERS.get(name)
            if handler is None:
                chk.unknown_key(name, key_node, where, STEP_KEYS)
                continue
            if name == "name":
                name_key = key_node
            has_run = has_run or name == "run"
            if _is_null(value) and name not in ("run", "name"):
                continue  # an empty key means its default
            handler(self, spec, f"{name!r} in {label}", value)
        if not has_run:
            chk.add(node, f"{label} has no 'run': every step needs the command(s) to run")
        if key is None and name_key is None:
            chk.add(node, f"{label} has no 'name': in the list form every step needs one")
        if key is not None and name_key is not None and not spec.has_matrix:
            chk.add(
                name_key,
                f"{label}: the mapping key already names the step; 'name' is only allowed "
                "here with 'matrix', as the pattern for the names of its expansions",
            )
        if spec.has_matrix and spec.matrix_values is not None:
            chk.add(node, f"{label}: 'matrix' and 'matrix_values' cannot be used together")
        return spec

    def _name(self, spec: StepSpec, what: str, node: Node) -> None:
        text = self.chk.text(node, what, "a step name")
        if text is None:
            return
        problem = name_problem(text)
        if problem:
            self.chk.add(node, f"the step name {text!r} {problem}")
        if spec.base is None:  # list form: the name is the base name and the pattern
            spec.base, spec.name_node = text, node
        spec.template = (text, node)

    def _run(self, spec: StepSpec, what: str, node: Node) -> None:
        lines = self.chk.texts(node, what, "a command")
        if lines is None:
            return
        if not any(line.strip() for line, _ in lines):
            self.chk.add(node, f"{what}: expected at least one command, got {describe(node)}")
            return
        spec.run = lines

    def _shell(self, spec: StepSpec, what: str, node: Node) -> None:
        expected = "a command line such as 'bash -c' or a list of its words"
        if isinstance(node, SequenceNode):
            words = self.chk.texts(node, what, "a word")
            argv = None if words is None else [w for w, _ in words]
        else:
            line = self.chk.text(node, what, expected)
            if line is None:
                return
            import shlex  # not needed unless a pipeline sets a shell

            try:
                argv = shlex.split(line)
            except ValueError as exc:
                self.chk.add(node, f"{what}: cannot split {line!r} into words: {exc}")
                return
        if argv is None:
            return
        if not argv or not argv[0]:
            self.chk.add(node, f"{what}: expected {expected}, got {describe(node)}")
            return
        spec.fields["shell"] = tuple(argv)

    def _needs(self, spec: StepSpec, what: str, node: Node) -> None:
        names = self.chk.texts(node, what, "a step name")
        if names is not None:
            spec.needs = names

    def _env_key(self, spec: StepSpec, what: str, node: Node) -> None:
        env = self._env(node, what)
        if env is not None:
            spec.fields["env"] = env

    def _env(self, node: Node, what: str) -> dict[str, str] | None:
        chk = self.chk
        mapping = chk.mapping(node, what, "a mapping of variable names to values")
        if mapping is None:
            return None
        env: dict[str, str] = {}
        for name, key, value in chk.items(mapping, f" in {what}"):
            if not is_identifier(name):
                chk.add(
                    key,
                    f"{what}: {name!r} is not a valid variable name; use letters, digits "
                    "and _, not starting with a digit",
                )
            elif _is_null(value):
                chk.add(key, f"{what}: {name} has no value; write {name}: '' for an empty one")
            else:
                text = chk.text(value, what, f"a value for {name} such as 1 or 'text'")
                if text is not None:
                    env[name] = text
        return env

    def _timeout(self, spec: StepSpec, what: str, node: Node) -> None:
        chk = self.chk
        expected = f"a duration such as {DURATION_EXAMPLES}"
        if not chk.visit(node):
            return
        seconds: float | None = None
        if isinstance(node, ScalarNode) and node.tag == STR:
            with contextlib.suppress(ValueError):
                seconds = parse_duration(node.value)
        elif isinstance(node, ScalarNode) and node.tag in (INT, FLOAT):
            seconds = chk.number(node, what, expected)
            if seconds is None:
                return
        if seconds is None:
            chk.add(node, f"{what}: expected {expected}, got {describe(node)}")
        elif seconds <= 0:
            chk.add(node, f"{what}: a timeout must be more than 0 seconds, got {describe(node)}")
        elif seconds > TIMEOUT_CEILING:
            chk.add(node, f"{what}: {describe(node)} is more than the ceiling of 30 days")
        elif self.max_timeout is not None and seconds > self.max_timeout:
            chk.add(
                node,
                f"{what}: {format_duration(seconds)} is more than the maximum timeout of "
                f"{format_duration(self.max_timeout)}",
            )
        else:
            spec.fields["timeout"] = seconds

    def _retries(self, spec: StepSpec, what: str, node: Node) -> None:
        value = self.chk.integer(node, what, 0)
        if value is not None:
            spec.fields["retries"] = value

    def _retry_on(self, spec: StepSpec, what: str, node: Node) -> None:
        items = node.value if isinstance(node, SequenceNode) else [node]
        if isinstance(node, SequenceNode) and not self.chk.visit(node):
            return
        codes = [self.chk.integer(item, what, 1, 255) for item in items]
        if None not in codes:
            spec.fields["retry_on"] = tuple(codes)

    def _allow_failure(self, spec: StepSpec, what: str, node: Node) -> None:
        value = self.chk.boolean(node, what)
        if value is not None:
            spec.fields["allow_failure"] = value

    def _network(self, spec: StepSpec, what: str, node: Node) -> None:
        value = self.chk.boolean(node, what)
        if value is not None:
            spec.fields["network"] = value

    def _weight(self, spec: StepSpec, what: str, node: Node) -> None:
        value = self.chk.integer(node, what, 1)
        if value is not None:
            spec.fields["weight"] = value

    def _when(self, spec: StepSpec, what: str, node: Node) -> None:
        chk = self.chk
        mapping = chk.mapping(node, what, "a mapping with 'branches' and/or 'events'")
        if mapping is None:
            return
        found: dict[str, tuple[str, ...]] = {}
        ok = True
        for name, key, value in chk.items(mapping, f" in {what}"):
            if name not in WHEN_KEYS:
                chk.unknown_key(name, key, f" in {what}", WHEN_KEYS)
                ok = False
                continue
            if _is_null(value):
                continue
            inner = f"{name!r} of {what}"
            if name == "branches":
                items = chk.texts(value, inner, "a branch pattern such as 'main' or 'release/*'")
                for pattern, item in items or ():
                    if not pattern.strip() or pattern == "!":
                        chk.add(item, f"{inner}: a branch pattern cannot be empty")
                        ok = False
            else:
                items = chk.texts(value, inner, "an event")
                for event, item in items or ():
                    if event not in EVENTS:
                        chk.add(
                            item,
                            f"{inner}: unknown event {event!r}{did_you_mean(event, EVENTS)} "
                            f"(events are {', '.join(EVENTS)})",
                        )
                        ok = False
            if items is None:
                ok = False
            else:
                found[name] = tuple(text for text, _ in items)
        if ok:
            spec.fields["when"] = When(**found)

    def _matrix(self, spec: StepSpec, what: str, node: Node) -> None:
        chk = self.chk
        mapping = chk.mapping(node, what, "a mapping of variable names to lists of values")
        spec.has_matrix = True
        if mapping is not None:
            spec.matrix = read_matrix(chk, mapping, spec.label)

    def _matrix_values(self, spec: StepSpec, what: str, node: Node) -> None:
        # Written by dump_pipeline for steps that were expanded already: it
        # records Step.matrix without expanding anything again.
        chk = self.chk
        mapping = chk.mapping(node, what, "a mapping of matrix variables to values")
        if mapping is None:
            return
        values = {}
        for name, _, value in chk.items(mapping, f" in {what}"):
            text = chk.text(value, f"{what}, {name}", "a value")
            if text is not None:
                values[name] = text
        spec.matrix_values = values

    def _globs(self, spec: StepSpec, what: str, node: Node, field: str) -> None:
        globs = self.chk.texts(node, what, "a glob such as 'dist/*.whl'")
        if globs is None:
            return
        ok = True
        for glob, item in globs:
            problem = path_problem(glob)
            if problem:
                self.chk.add(item, f"{what}: the pattern {glob!r} {problem}")
                ok = False
        if ok:
            spec.fields[field] = tuple(glob for glob, _ in globs)

    def _artifacts(self, spec: StepSpec, what: str, node: Node) -> None:
        self._globs(spec, what, node, "artifacts")

    def _junit(self, spec: StepSpec, what: str, node: Node) -> None:
        self._globs(spec, what, node, "junit")

    def _workdir(self, spec: StepSpec, what: str, node: Node) -> None:
        text = self.chk.text(node, what, "a path relative to the workspace")
        if text is not None:
            spec.workdir = (text, node)  # checked after ${{ matrix.X }} is filled in

    def _image(self, spec: StepSpec, what: str, node: Node) -> None:
        text = self.chk.text(node, what, "an image name such as 'python:3.12'")
        if text is not None:
            spec.image = (text, node)

    def _sandbox(self, spec: StepSpec, what: str, node: Node) -> None:
        text = self.chk.text(node, what, "a sandbox name such as 'local' or 'docker'")
        if text is None:
            return
        if not text.strip():
            self.chk.add(node, f"{what}: the sandbox name is empty")
            return
        spec.fields["sandbox"] = text

    def _secrets(self, spec: StepSpec, what: str, node: Node) -> None:
        names = self.chk.texts(node, what, "an environment variable name")
        if names is None:
            return
        ok = True
        for name, item in names:
            if not is_identifier(name):
                self.chk.add(
                    item,
                    f"{what}: {name!r} is not a valid variable name; use letters, digits "
                    "and _, not starting with a digit",
                )
                ok = False
        if ok:
            spec.fields["secrets"] = tuple(name for name, _ in names)

    def _services(self, spec: StepSpec, what: str, node: Node) -> None:
        """``services: [{name, image, command, env, ready, ready_timeout}, ...]``.

        A bare string is an image; the service is named after the last path
        component of its name, without tag or digest.
        """
        chk = self.chk
        expected = "a list of services, each an image name or a mapping with 'name' and 'image'"
        if not isinstance(node, SequenceNode):
            if chk.visit(node):
                chk.add(node, f"{what}: expected {expected}, got {describe(node)}")
            return
        if not chk.visit(node):
            return
        services: list[Service] = []
        seen: dict[str, int] = {}
        ok = True
        for index, item in enumerate(node.value, 1):
            service = self._service(item, f"service #{index} of {what}")
            if service is None:
                ok = False
                continue
            if service.name in seen:
                chk.add(
                    item,
                    f"{what}: duplicate service name {service.name!r}; the first is "
                    f"service #{seen[service.name]}",
                )
                ok = False
                continue
            seen[service.name] = index
            services.append(service)
        if ok:
            spec.fields["services"] = tuple(services)

    def _service(self, node: Node, what: str) -> Service | None:
        chk = self.chk
        if isinstance(node, ScalarNode) and node.tag in TEXT_TAGS:
            image = chk.text(node, what, "an image name")
            if image is None:
                return None
            if not image.strip():
                chk.add(node, f"{what}: the image name is empty")
                return None
            name = _image_base(image)
            problem = service_name_problem(name)
            if problem:
                chk.add(
                    node,
                    f"{what}: the name {name!r} taken from the image {problem}; "
                    "write the mapping form with 'name'",
                )
                return None
            return Service(name=name, image=image)
        mapping = chk.mapping(
            node, what, "an image name or a mapping with 'name', 'image' and more"
        )
        if mapping is None:
            return None
        found: dict[str, Any] = {}
        ok = True
        keys: set[str] = set()
        for key, key_node, value in chk.items(mapping, f" in {what}"):
            inner = f"{key!r} of {what}"
            if key not in SERVICE_KEYS:
                chk.unknown_key(key, key_node, f" in {what}", SERVICE_KEYS)
                ok = False
                continue
            keys.add(key)
            if _is_null(value) and key not in ("name", "image"):
                continue
            result: Any = None
            if key == "name":
                result = chk.text(value, inner, "a service name such as 'cache'")
                if result is not None:
                    problem = service_name_problem(result)
                    if problem:
                        chk.add(value, f"{inner}: {result!r} {problem}")
                        result = None
            elif key == "image":
                result = chk.text(value, inner, "an image name such as 'redis:7'")
                if result is not None and not result.strip():
                    chk.add(value, f"{inner}: the image name is empty")
                    result = None
            elif key == "command":
                words = chk.texts(value, inner, "a word")
                result = None if words is None else tuple(w for w, _ in words)
            elif key == "env":
                result = self._env(value, inner)
            elif key == "ready":
                result = chk.text(value, inner, "a shell command such as 'redis-cli ping'")
                if result is not None and not result.strip():
                    chk.add(value, f"{inner}: the command is empty")
                    result = None
            else:
                result = self._duration(value, inner)
            if result is None:
                ok = False
            else:
                found[key] = result
        for required in ("name", "image"):
            if required not in keys:
                chk.add(mapping, f"{what} has no {required!r}")
                ok = False
        if not ok:
            return None
        return Service(**found)

    def _duration(self, node: Node, what: str) -> float | None:
        chk = self.chk
        expected = f"a duration such as {DURATION_EXAMPLES}"
        if not chk.visit(node):
            return None
        seconds: float | None = None
        if isinstance(node, ScalarNode) and node.tag == STR:
            with contextlib.suppress(ValueError):
                seconds = parse_duration(node.value)
        elif isinstance(node, ScalarNode) and node.tag in (INT, FLOAT):
            seconds = chk.number(node, what, expected)
            if seconds is None:
                return None
        if seconds is None:
            chk.add(node, f"{what}: expected {expected}, got {describe(node)}")
        elif seconds <= 0:
            chk.add(node, f"{what}: expected more than 0 seconds, got {describe(node)}")
        elif seconds > TIMEOUT_CEILING:
            chk.add(node, f"{what}: {describe(node)} is more than the ceiling of 30 days")
        else:
            return seconds
        return None

    def _limits(self, spec: StepSpec, what: str, node: Node) -> None:
        chk = self.chk
        mapping = chk.mapping(node, what, "a mapping with 'memory', 'processes' and/or 'cpu'")
        if mapping is None:
            return
        found: dict[str, Any] = {}
        ok = True
        for name, key, value in chk.items(mapping, f" in {what}"):
            inner = f"{name!r} of {what}"
            if name not in LIMIT_KEYS:
                chk.unknown_key(name, key, f" in {what}", LIMIT_KEYS)
                ok = False
                continue
            if _is_null(value):
                continue
            if name == "memory":
                found[name] = self._size(value, inner)
            elif name == "processes":
                found[name] = chk.integer(value, inner, 1)
            else:
                cpu = chk.number(value, inner, "a number of cores such as 2 or 0.5")
                if cpu is not None and cpu <= 0:
                    chk.add(value, f"{inner}: expected more than 0 cores, got {describe(value)}")
                    cpu = None
                found[name] = cpu
            ok = ok and found[name] is not None
        if ok:
            spec.fields["limits"] = Limits(**found)

    def _size(self, node: Node, what: str) -> int | None:
        chk = self.chk
        if not chk.visit(node):
            return None
        size: int | None = None
        if isinstance(node, ScalarNode) and node.tag == STR:
            with contextlib.suppress(ValueError):
                size = parse_size(node.value)
        elif isinstance(node, ScalarNode) and node.tag == INT:
            return chk.integer(node, what, 1, MAX_MEMORY)
        if size is None:
            chk.add(node, f"{what}: expected a size such as {SIZE_EXAMPLES}, got {describe(node)}")
        elif size < 1:
            chk.add(node, f"{what}: expected at least 1 byte, got {describe(node)}")
        elif size > MAX_MEMORY:
            chk.add(node, f"{what}: {describe(node)} is too large")
        else:
            return size
        return None


def _image_base(image: str) -> str:
    """``redis`` for ``docker.io/library/redis:7@sha256:...``."""
    last = image.split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _peek_name(node: MappingNode) -> str | None:
    """The step's label from its 'name' before the keys are checked one by one."""
    for key, value in node.value:
        if (
            isinstance(key, ScalarNode)
            and key.value == "name"
            and isinstance(value, ScalarNode)
            and value.tag in TEXT_TAGS
        ):
            return f"step {value.value!r}"
    return None


_STEP_HANDLERS: dict[str, _Handler] = {
    "allow_failure": Reader._allow_failure,
    "artifacts": Reader._artifacts,
    "env": Reader._env_key,
    "image": Reader._image,
    "junit": Reader._junit,
    "limits": Reader._limits,
    "matrix": Reader._matrix,
    "matrix_values": Reader._matrix_values,
    "name": Reader._name,
    "needs": Reader._needs,
    "network": Reader._network,
    "retries": Reader._retries,
    "retry_on": Reader._retry_on,
    "run": Reader._run,
    "sandbox": Reader._sandbox,
    "secrets": Reader._secrets,
    "services": Reader._services,
    "shell": Reader._shell,
    "timeout": Reader._timeout,
    "weight": Reader._weight,
    "when": Reader._when,
    "workdir": Reader._workdir,
}
