"""The keys of one step of ``.sauci.yml``: a handler for each, which checks the
value and keeps it in the :class:`StepSpec`.

``_schema`` looks each key up in :data:`STEP_HANDLERS`, which a test keeps
equal to ``STEP_KEYS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from yaml.nodes import MappingNode, Node, SequenceNode

from sauci.core.models import Limits, When
from sauci.core.pipeline._nodes import (
    Checker,
    describe,
    did_you_mean,
    variable_problem,
)
from sauci.core.pipeline._spec import (
    EVENTS,
    StepSpec,
    name_problem,
    path_problem,
)
from sauci.core.pipeline._units import format_duration
from sauci.core.pipeline._values import ValueReader
from sauci.core.resources import Resources

if TYPE_CHECKING:
    from sauci.core.step_parts import Service

__all__ = ["STEP_HANDLERS", "StepKeyReader"]

# The name of a registered sandbox (an entry point's name); no ':' or '.'.
_SANDBOX_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"  # compiled by re at its first use

_Handler = Callable[["StepKeyReader", StepSpec, str, Node], None]


class StepKeyReader(ValueReader):
    """Reads the keys of one step into its StepSpec; ``Reader`` walks the document."""

    max_resources: Resources | None = None  # the server's per-build maximum

    def __init__(
        self,
        chk: Checker,
        max_timeout: float | None,
        sandboxes: Collection[str] | None = None,
        network: bool = True,
    ) -> None:
        super().__init__(chk)
        self.max_timeout = max_timeout
        # The server's policy: the sandbox names a step may ask for (None: any),
        # and whether steps may have the network at all.
        self.sandboxes = sandboxes
        self.network_allowed = network

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

    def _cache(self, spec: StepSpec, what: str, node: Node) -> None:
        # The key's checks (sauci.core.cache_key) are read by a step with a cache only.
        from sauci.core.pipeline._cache_keys import read_cache

        cache = read_cache(self.chk, node, what)
        _keep(spec, "cache", cache)
        if cache is not None and isinstance(node, MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) == "key":
                    spec.cache_key = (cache.key, value)

    def _env_key(self, spec: StepSpec, what: str, node: Node) -> None:
        spec.env = {}
        _keep(spec, "env", self._env(node, what, spec.env))

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
        _keep(spec, "retries", self.chk.integer(node, what, 0))

    def _retry_on(self, spec: StepSpec, what: str, node: Node) -> None:
        items = node.value if isinstance(node, SequenceNode) else [node]
        if isinstance(node, SequenceNode) and not self.chk.visit(node):
            return
        codes = [self.chk.integer(item, what, 1, 255) for item in items]
        if None not in codes:
            spec.fields["retry_on"] = tuple(codes)

    def _retry_when(self, spec: StepSpec, what: str, node: Node) -> None:
        from sauci.core.models import RETRY_KINDS

        kinds = self.chk.texts(node, what, "a kind of failure")
        if kinds is not None and self.chk.all_valid(
            kinds,
            lambda kind: None if kind in RETRY_KINDS else f"one of {', '.join(RETRY_KINDS)}",
            lambda kind, fault: f"{what}: {kind!r} is not {fault}",
        ):
            spec.fields["retry_when"] = tuple(kind for kind, _ in kinds)

    def _allow_failure(self, spec: StepSpec, what: str, node: Node) -> None:
        _keep(spec, "allow_failure", self.chk.boolean(node, what))

    def _network(self, spec: StepSpec, what: str, node: Node) -> None:
        _keep(spec, "network", self.network_value(node, what))

    def network_value(self, node: Node, what: str) -> bool | None:
        """A ``network:`` value, refused when it asks for more than the server allows."""
        value = self.chk.boolean(node, what)
        if value and not self.network_allowed:
            # A pipeline can narrow the server's policy, never widen it.
            self.chk.add(
                node,
                f"{what}: the network is off on this server, so a pipeline cannot turn it "
                "on; its operator sets this with the setting network (sauci.toml, "
                "SAUCI_NETWORK, --no-network, Django SAUCI['NETWORK'])",
            )
            return None
        return value

    def _weight(self, spec: StepSpec, what: str, node: Node) -> None:
        _keep(spec, "weight", self.chk.integer(node, what, 1))

    def _when(self, spec: StepSpec, what: str, node: Node) -> None:
        readers = {"branches": self._branches, "events": self._events}
        found = self._options(node, what, "a mapping with 'branches' and/or 'events'", readers)
        _keep(spec, "when", None if found is None else When(**found))

    def _branches(self, node: Node, what: str) -> tuple[str, ...] | None:
        expected = "a branch pattern such as 'main' or 'release/*'"
        return self._valid_texts(node, what, expected, _branch_problem)

    def _events(self, node: Node, what: str) -> tuple[str, ...] | None:
        return self._valid_texts(node, what, "an event", _event_problem)

    def _valid_texts(
        self, node: Node, what: str, expected_one: str, problem: Callable[[str], str | None]
    ) -> tuple[str, ...] | None:
        """A text or a list of them, each without a ``problem``; None once the
        problems are added."""
        texts = self.chk.texts(node, what, expected_one)
        if texts is None or not self.chk.all_valid(texts, problem, lambda _, f: f"{what}: {f}"):
            return None
        return tuple(text for text, _ in texts)

    def _matrix(self, spec: StepSpec, what: str, node: Node) -> None:
        chk = self.chk
        mapping = chk.mapping(node, what, "a mapping of variable names to lists of values")
        spec.has_matrix = True
        if mapping is not None:
            from sauci.core.pipeline._matrix import read_matrix  # a step with a matrix only

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
        if self.chk.all_valid(
            globs, path_problem, lambda glob, fault: f"{what}: the pattern {glob!r} {fault}"
        ):
            spec.fields[field] = tuple(glob for glob, _ in globs)
            spec.globs[field] = globs  # checked again after ${{ ... }} is filled in

    def _artifacts(self, spec: StepSpec, what: str, node: Node) -> None:
        self._globs(spec, what, node, "artifacts")

    def _junit(self, spec: StepSpec, what: str, node: Node) -> None:
        self._globs(spec, what, node, "junit")

    def _workdir(self, spec: StepSpec, what: str, node: Node) -> None:
        text = self.chk.text(node, what, "a path relative to the workspace")
        if text is not None:
            spec.workdir = (text, node)  # checked after ${{ ... }} is filled in

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
        if not re.fullmatch(_SANDBOX_NAME, text):
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
        if self.chk.all_valid(
            names, variable_problem, lambda name, fault: f"{what}: {name!r} {fault}"
        ):
            spec.fields["secrets"] = tuple(name for name, _ in names)

    def _services(self, spec: StepSpec, what: str, node: Node) -> None:
        """``services: [{name, image, command, env, ready, ready_timeout}, ...]``.

        A bare string is an image; the service is named after the last path
        component of its name, without tag or digest.
        """
        chk = self.chk
        expected = "a list of services, each an image name or a mapping with 'name' and 'image'"
        entries = chk.sequence(node, what, expected)
        if entries is None:
            return
        services: list[Service] = []
        seen: dict[str, int] = {}
        ok = True
        for index, item in enumerate(entries.value, 1):
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
        readers: dict[str, Callable[[Node, str], Any]] = {
            "cpu": self._cores,
            "memory": self._size,
            "processes": lambda value, inner: self.chk.integer(value, inner, 1),
        }
        expected = "a mapping with 'memory', 'processes' and/or 'cpu'"
        found = self._options(node, what, expected, readers)
        if found is not None and self.max_resources is not None:
            from sauci.core.pipeline._resources import over_maximum

            # A limit is what the sandbox lets the step take: above the
            # server's per-build maximum it would widen what `resources:`
            # may not declare (a cheap cost reserved, 64 cores taken).
            if over_maximum(self, node, what, found, self.max_resources):
                found = None
        _keep(spec, "limits", None if found is None else Limits(**found))

    def _resources(self, spec: StepSpec, what: str, node: Node) -> None:
        from sauci.core.pipeline._resources import read_resources

        _keep(spec, "resources", read_resources(self, node, what, self.max_resources))

    def _cores(self, node: Node, what: str) -> float | None:
        cores = self.chk.number(node, what, "a number of cores such as 2 or 0.5")
        if cores is not None and cores <= 0:
            self.chk.add(node, f"{what}: expected more than 0 cores, got {describe(node)}")
            return None
        return cores


def _branch_problem(pattern: str) -> str | None:
    if not pattern.strip() or pattern == "!":
        return "a branch pattern cannot be empty"
    return None


def _event_problem(event: str) -> str | None:
    if event in EVENTS:
        return None
    return f"unknown event {event!r}{did_you_mean(event, EVENTS)} (events are {', '.join(EVENTS)})"


def _keep(spec: StepSpec, field: str, value: object) -> None:
    """Keep a value read for ``field``; None means its problem is reported."""
    if value is not None:
        spec.fields[field] = value


STEP_HANDLERS: dict[str, _Handler] = {
    "allow_failure": StepKeyReader._allow_failure,
    "artifacts": StepKeyReader._artifacts,
    "cache": StepKeyReader._cache,
    "env": StepKeyReader._env_key,
    "image": StepKeyReader._image,
    "junit": StepKeyReader._junit,
    "limits": StepKeyReader._limits,
    "matrix": StepKeyReader._matrix,
    "matrix_values": StepKeyReader._matrix_values,
    "name": StepKeyReader._name,
    "needs": StepKeyReader._needs,
    "network": StepKeyReader._network,
    "resources": StepKeyReader._resources,
    "retries": StepKeyReader._retries,
    "retry_on": StepKeyReader._retry_on,
    "retry_when": StepKeyReader._retry_when,
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
