"""The keys of one step of ``.sauci.yml``: a handler for each, which checks the
value and keeps it in the :class:`StepSpec`.

``_schema`` looks each key up in :data:`STEP_HANDLERS`, which a test keeps
equal to ``STEP_KEYS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from yaml.nodes import Node, SequenceNode

from sauci.core.models import Limits, When
from sauci.core.pipeline._matrix import read_matrix
from sauci.core.pipeline._nodes import (
    Checker,
    describe,
    did_you_mean,
    is_identifier,
    is_null,
)
from sauci.core.pipeline._spec import (
    EVENTS,
    LIMIT_KEYS,
    WHEN_KEYS,
    StepSpec,
    name_problem,
    path_problem,
)
from sauci.core.pipeline._units import format_duration
from sauci.core.pipeline._values import ValueReader

if TYPE_CHECKING:
    from sauci.core.pipeline_parts import Service

__all__ = ["STEP_HANDLERS", "StepKeyReader"]

# The name of a registered sandbox (an entry point's name); no ':' or '.'.
_SANDBOX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

_Handler = Callable[["StepKeyReader", StepSpec, str, Node], None]


class StepKeyReader(ValueReader):
    """Reads the keys of one step into its StepSpec; ``Reader`` walks the document."""

    def __init__(
        self,
        chk: Checker,
        max_timeout: float | None,
        sandboxes: Collection[str] | None = None,
    ) -> None:
        super().__init__(chk)
        self.max_timeout = max_timeout
        # The server's policy: the sandbox names a step may ask for (None: any).
        self.sandboxes = sandboxes

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

    def _timeout(self, spec: StepSpec, what: str, node: Node) -> None:
        seconds = self._duration(node, what, not_positive="a timeout must be more than 0 seconds")
        if seconds is None:
            return
        if self.max_timeout is not None and seconds > self.max_timeout:
            self.chk.add(
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
            if is_null(value):
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
        if not _SANDBOX_NAME.fullmatch(text):
            # A pipeline comes from whoever can push: it names a sandbox the
            # server knows, never code for the server to import.
            self.chk.add(
                node,
                f"{what}: {text!r} is not a sandbox name; a pipeline names a sandbox the "
                "server knows (letters, digits, '_' and '-'), never a module or path to "
                "import: plugins come from installed packages and the server's configuration",
            )
            return
        if self.sandboxes is not None and text not in self.sandboxes:
            allowed = ", ".join(sorted(self.sandboxes)) or "none"
            self.chk.add(
                node,
                f"{what}: the sandbox {text!r} is not allowed by this server (allowed: "
                f"{allowed}); its operator can allow it with the setting allowed_sandboxes "
                "(sauci.toml, SAUCI_ALLOWED_SANDBOXES or --allow-sandbox)",
            )
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
            if is_null(value):
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


STEP_HANDLERS: dict[str, _Handler] = {
    "allow_failure": StepKeyReader._allow_failure,
    "artifacts": StepKeyReader._artifacts,
    "env": StepKeyReader._env_key,
    "image": StepKeyReader._image,
    "junit": StepKeyReader._junit,
    "limits": StepKeyReader._limits,
    "matrix": StepKeyReader._matrix,
    "matrix_values": StepKeyReader._matrix_values,
    "name": StepKeyReader._name,
    "needs": StepKeyReader._needs,
    "network": StepKeyReader._network,
    "retries": StepKeyReader._retries,
    "retry_on": StepKeyReader._retry_on,
    "run": StepKeyReader._run,
    "sandbox": StepKeyReader._sandbox,
    "secrets": StepKeyReader._secrets,
    "services": StepKeyReader._services,
    "shell": StepKeyReader._shell,
    "timeout": StepKeyReader._timeout,
    "weight": StepKeyReader._weight,
    "when": StepKeyReader._when,
    "workdir": StepKeyReader._workdir,
}
