"""What ``.sauci.yml`` may say: the keys at each level, the ceilings on values,
and :class:`StepSpec`, one entry of ``steps`` as written.

The rules on step names and workspace paths are here too: ``_build`` applies
them again once each ``${{ ... }}`` is filled in.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, Any

from yaml.nodes import MappingNode, Node

if TYPE_CHECKING:
    from sauci.core.pipeline._matrix import Matrix

__all__ = [
    "EVENTS",
    "MAX_MEMORY",
    "MAX_NAME",
    "SERVICE_KEYS",
    "STEP_KEYS",
    "TIMEOUT_CEILING",
    "TOP_KEYS",
    "StepSpec",
    "name_problem",
    "path_problem",
]

TOP_KEYS = ("env", "network", "resources", "runs_on", "schedule", "steps", "version")
STEP_KEYS = (
    "allow_failure",
    "artifacts",
    "cache",
    "env",
    "image",
    "junit",
    "limits",
    "matrix",
    "matrix_values",
    "name",
    "needs",
    "network",
    "resources",
    "retries",
    "retry_on",
    "retry_when",
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
SERVICE_KEYS = ("command", "env", "image", "name", "ready", "ready_timeout")
EVENTS = ("cli", "cron", "manual", "pull_request", "push", "rerun", "tag", "webhook")

# An absolute ceiling whatever max_timeout says: beyond it, timers in the
# sandboxes overflow (threading.Timer(1e300) raises OverflowError).
TIMEOUT_CEILING = 30 * 24 * 3600.0
MAX_MEMORY = 2**63 - 1
MAX_NAME = 200
# Control characters (C0, DEL, C1) and the line and paragraph separators: a
# set, not a pattern, since re builds a 64K-entry map for a class that goes past
# U+00FF, 0.4% of a `sauci run`, which reads a name or two.
_CONTROL = frozenset(map(chr, (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)))
_WINDOWS_ABSOLUTE = r"[A-Za-z]:[\\/]"  # compiled by re at its first use


class StepSpec:
    """One entry of ``steps`` as written, with the nodes needed to locate problems."""

    __slots__ = (
        "base",
        "cache_key",
        "env",
        "expanded",
        "fields",
        "globs",
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
        self.env: dict[str, tuple[str, Node]] = {}  # the step's env values with their nodes
        self.globs: dict[str, list[tuple[str, Node]]] = {}  # "junit"/"artifacts" as written
        self.cache_key: tuple[str, Node] | None = None  # cache: key, its matrix names checked
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
    if slashed.startswith("/") or re.match(_WINDOWS_ABSOLUTE, path):
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
    if not _CONTROL.isdisjoint(name):
        return "holds a control character such as a newline or a tab"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    return None
