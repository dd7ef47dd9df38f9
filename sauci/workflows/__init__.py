"""Front ends that read the workflow files projects already have into SauCI's Pipeline.

:func:`find_workflow` picks what a workspace runs: the native ``.sauci.yml``
first, else ``.github/workflows/*.yml``/``*.yaml``, else ``.gitlab-ci.yml``.
:func:`load_workflow` reads one and gives a :class:`Loaded`: the Pipeline,
and for workflow files the plan text ``sauci validate`` prints.

Front ends are found through :data:`FRONT_ENDS`: a kind (``"github"``,
``"gitlab"``) mapped to ``"module:function"``, imported only when a file of
that kind is read. The function is called as ``function(path, text,
options)`` and returns a :class:`Loaded` (or a Pipeline); it raises
PipelineError with file:line:col problems. Adding a front end is one entry
(the table is in ``sauci/workflows/_lookup.py``). A server reads a build's
file through :func:`load_for_build` (the Runner's ``pipeline_loader``) and
its cron schedules through :func:`workflow_schedules`; :func:`action_commands`
is the operator's ``[sauci.actions]`` table; :class:`ConcurrencyGate` holds
and cancels builds by their workflow's ``concurrency`` group. This package imports the core,
never the other way round.
"""

from __future__ import annotations

from sauci.workflows._concurrency import ConcurrencyGate
from sauci.workflows._for_build import action_commands, load_for_build, workflow_schedules
from sauci.workflows._lookup import (
    FRONT_ENDS,
    NATIVE,
    Loaded,
    Options,
    find_workflow,
    load_workflow,
)

__all__ = [
    "FRONT_ENDS",
    "NATIVE",
    "ConcurrencyGate",
    "Loaded",
    "Options",
    "action_commands",
    "find_workflow",
    "load_for_build",
    "load_workflow",
    "workflow_schedules",
]
