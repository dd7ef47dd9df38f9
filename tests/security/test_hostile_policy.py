"""A pushed pipeline cannot choose where it runs: a sandbox the server's policy
does not allow, or one named as code to import, fails validation before
anything runs, and the named module is never imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sauci.core.models import Status

# A module the pusher commits; importing it leaves a file behind.
EVIL_MODULE = "import pathlib\npathlib.Path({path!r}).write_text('imported')\nclass Boom: pass\n"


def _pipeline(sandbox: str) -> str:
    # `sandbox:` is on line 6, column 14 (1-based), as the reason must say.
    return (
        "steps:\n"
        "  innocent:\n"
        "    run: echo innocent > innocent.txt\n"
        "    artifacts: innocent.txt\n"
        "  escape:\n"
        f"    sandbox: {sandbox}\n"
        "    run: echo escaped > escaped.txt\n"
        "    artifacts: escaped.txt\n"
    )


@pytest.mark.parametrize(
    ("sandbox", "why"),
    [
        ("local", "allowed_sandboxes"),
        ("docker", "allowed_sandboxes"),
        ("sauci_evil", "allowed_sandboxes"),
        ("sauci_evil.mod:Boom", "never a module or path to import"),
        ("sauci_evil.mod", "never a module or path to import"),
    ],
)
def test_a_sandbox_outside_the_policy_fails_validation_and_nothing_runs(
    namespace_target, tmp_path, sandbox, why
):
    target = namespace_target
    imported = tmp_path / "imported.txt"
    evil = EVIL_MODULE.format(path=str(imported))
    files = {"sauci_evil/__init__.py": evil, "sauci_evil/mod.py": evil}
    sha = target.origin.commit(_pipeline(sandbox), files=files, message=f"ask for {sandbox}")
    # Control: from the server's working directory the committed module
    # would import (and leave its file), were the server to import it.
    subprocess.run(
        [sys.executable, "-c", "import sauci_evil.mod"], cwd=target.origin.work, check=True
    )
    assert imported.exists()
    imported.unlink()

    ref = f"refs/heads/policy-{sandbox.replace(':', '-')}"
    target.origin.push(ref)
    build = target.served.build_of(sha, ref)

    assert Status.ERRORED == build.status
    assert build.reason is not None
    assert ".sauci.yml:6:14: 'sandbox' in step 'escape'" in build.reason, build.reason
    assert why in build.reason
    assert not imported.exists(), "the server imported a module named by a pushed pipeline"
    steps = target.served.store().list_steps(build.id)
    assert [] == [s.name for s in steps if s.started_at is not None]
    assert [] == list((target.data / "artifacts").rglob("escaped.txt"))
    assert [] == list((target.data / "artifacts").rglob("innocent.txt"))
