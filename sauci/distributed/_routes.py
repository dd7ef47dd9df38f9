"""The worker labels a build's pipeline asks for, read by the dispatcher before it sends it."""

from __future__ import annotations

import attrs

from sauci.core.config import Settings
from sauci.core.models import Build
from sauci.core.pipeline import FILENAME, parse_pipeline
from sauci.core.runner import PipelineLoader
from sauci.exceptions import ConfigError
from sauci.typing import Source

__all__ = ["read_runs_on"]


def read_runs_on(
    source: Source,
    build: Build,
    sha: str,
    settings: Settings,
    loader: PipelineLoader | None,
    parsed: dict[str, tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """``runs_on`` of the pipeline at ``sha``: .sauci.yml read straight from git,
    else (a workflow-only repository) what ``loader`` makes of a checkout, as a
    worker will. ConfigError or SourceError when there is none or it is broken.
    ``parsed``: ``runs_on`` by the text of a .sauci.yml already parsed (a burst
    of builds of one commit parses it once)."""
    text = source.read_file(sha, FILENAME)  # a committed symlink is a SourceError
    if text is None and loader is not None:
        lease = source.reserve(settings.workspaces_dir)
        try:
            workspace = lease.reset(sha)
            pipeline = loader(
                workspace,
                attrs.evolve(build, sha=sha),
                max_timeout=settings.max_timeout,
                network=settings.network,
            )
        finally:
            lease.release(tidy=True)
        return tuple(pipeline.runs_on)
    if text is None:
        raise ConfigError(f"no pipeline file {FILENAME} in {build.repo} at {sha[:12]}")
    if parsed is not None and text in parsed:
        return parsed[text]
    pipeline = parse_pipeline(
        text, f"{build.repo}@{sha[:12]}:{FILENAME}", max_timeout=settings.max_timeout
    )
    if parsed is not None:  # a broken one raised: parsed again, with its message, next time
        if len(parsed) >= 256:
            parsed.clear()
        parsed[text] = tuple(pipeline.runs_on)
    return tuple(pipeline.runs_on)
