"""The sandbox ``sauci run`` and ``sauci validate`` check a pipeline against,
so that validate says what run will say (``--sandbox NAME``, default local)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sauci.core.config import Settings
    from sauci.core.demands import SandboxCapabilities
    from sauci.typing import Sandbox

__all__ = ["DEFAULT_SANDBOX", "add_sandbox_flag", "chosen_sandbox", "pipeline_capabilities"]

DEFAULT_SANDBOX = "local"


def add_sandbox_flag(parser: argparse.ArgumentParser, *, help: str) -> None:
    parser.add_argument("--sandbox", metavar="NAME", default=None, help=help)


def _name(args: argparse.Namespace) -> str:
    return getattr(args, "sandbox", None) or DEFAULT_SANDBOX


def pipeline_capabilities(
    args: argparse.Namespace, settings: Settings
) -> SandboxCapabilities | None:
    """What the steps will run in; None when the settings run unenforced demands
    anyway (``unenforced_limits = "warn"``: run warns in the step's log)."""
    from sauci.plugins import SANDBOXES

    name = _name(args)
    SANDBOXES.load(name)  # an unknown name: PluginError with "did you mean" (exit 2)
    if settings.unenforced_limits == "warn":
        return None
    from sauci.app.sandboxes import sandbox_capabilities

    return sandbox_capabilities(name)


def chosen_sandbox(args: argparse.Namespace, settings: Settings | None = None) -> Sandbox | None:
    """The default sandbox ``sauci run`` hands its runner; None: the runner's own (local).
    Docker gets the settings' ``docker_image`` as its image for steps that name none."""
    name = _name(args)
    if name == DEFAULT_SANDBOX:
        return None
    from sauci.plugins import load_sandbox

    if name == "docker" and settings is not None and settings.docker_image:
        docker: Sandbox = load_sandbox(name, image=settings.docker_image)
        return docker
    sandbox: Sandbox = load_sandbox(name)
    return sandbox
