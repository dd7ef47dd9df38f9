"""NamespaceSandbox: LocalSandbox's lifetime and limits, plus Linux namespaces via bubblewrap.

The step sees the host's root read-only, its workspace writable, a writable
HOME and /tmp of its build's own (:mod:`sauci.sandbox._scratch`), the network
unless the sandbox's ``network`` policy or ``step.network`` turns it off, its
own pid, ipc and uts namespaces, uid 1000 with no capabilities. See docs/sandboxes.md for what
that does and does not keep out.

Why the step does not run as host root, even inside a user namespace: with
``--unshare-user`` bwrap maps the sandbox uid to the uid that started bwrap.
Started by root, the step would be *host uid 0 without capabilities*, and
ordinary owner permissions would still let it read every root-owned file
(``/etc/shadow``, ``/root/.ssh``). So when SauCI runs as root, bwrap is
started as an unprivileged host uid (``host_uid``, through ``setpriv``), and
the workspace is handed to that uid before the step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal as _signal
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.models import Step, StepResult
from sauci.exceptions import SandboxError
from sauci.sandbox._cache_bind import cache_bind
from sauci.sandbox._handover import (
    adopt_workspace,
    forget_hand_over,
    hand_over,
    hand_over_tools,
    workspace_written,
)
from sauci.sandbox._netnote import NetworkErrorWatch, network_note
from sauci.sandbox._proctree import StepCgroup
from sauci.sandbox._pscan import ProcessTree
from sauci.sandbox._scratch import HOME, ScratchDirs, scratch_path
from sauci.sandbox._steps import Job
from sauci.sandbox.local import LocalSandbox

__all__ = [
    "DEFAULT_HIDE",
    "DEFAULT_HOST_UID",
    "NamespaceSandbox",
    "adopt_workspace",
    "check_reachable",
]

log = get_logger(__name__)

# Far above the uids (1000-59999) and subuid ranges (100000 + 65536 * n) that
# Debian hands out, so the step's host uid owns nothing else on the machine.
DEFAULT_HOST_UID = 2_000_000_000
# Covered with an empty tmpfs inside the sandbox: people's files, and
# host-wide scratch space a step could use to talk to other steps.
DEFAULT_HIDE = ("/home", "/root", "/var/tmp", "/srv", "/mnt", "/media", "/run/user")


class NamespaceSandbox(LocalSandbox):
    """Runs each step under ``bwrap`` in new namespaces, in LocalSandbox's cgroup.

    ``host_uid``/``host_gid``: the unprivileged host ids the step runs as when
    SauCI is root (default :data:`DEFAULT_HOST_UID`); ignored otherwise (the
    step then runs as SauCI's own uid, which is what bwrap can map). ``uid``
    and ``gid`` are the ids the step sees. ``hide`` lists host paths covered
    inside the sandbox (add SauCI's data directory); the workspace's parent
    directory is always covered, so other builds' workspaces are not
    visible. ``network``: whether a step that does not say (``network:``)
    gets the host's network; False is the server policy ``--no-network``.
    Each build's steps get a HOME (``/home/sauci``) and a /tmp of their own,
    on disk beside the workspace; :meth:`build_ended` removes them. Other
    keyword arguments go to LocalSandbox
    (``grace``, ``limits``, ``use_cgroups``, ``cgroup_prefix``, ...).
    """

    kind = "namespace"
    # bwrap's --die-with-parent ends the step with the thread that started it.
    start_on_own_thread = False

    def __init__(
        self,
        *,
        bwrap: str = "bwrap",
        setpriv: str = "setpriv",
        uid: int = 1000,
        gid: int = 1000,
        host_uid: int | None = None,
        host_gid: int | None = None,
        hide: Iterable[str | Path] = DEFAULT_HIDE,
        network: bool = True,
        **local: Any,
    ) -> None:
        super().__init__(**local)
        found = shutil.which(bwrap)
        if found is None:
            raise SandboxError(
                f"bubblewrap ({bwrap!r}) is not installed; install it with: "
                "apt-get install bubblewrap"
            )
        self.bwrap = found
        self.env = shutil.which("env") or "/usr/bin/env"
        self.uid, self.gid = uid, gid
        self.as_root = os.geteuid() == 0
        self.setpriv: str | None = None
        self.host_uid = self.host_gid = None
        if self.as_root:
            self.host_uid = DEFAULT_HOST_UID if host_uid is None else host_uid
            self.host_gid = self.host_uid if host_gid is None else host_gid
            if self.host_uid == 0:
                raise SandboxError("host_uid=0 would let steps read every root-owned file")
            self.setpriv = shutil.which(setpriv)
            if self.setpriv is None:
                raise SandboxError(f"{setpriv!r} (util-linux) is needed to drop root for bwrap")
        self.hide = tuple(sorted({os.path.abspath(p) for p in hide}, key=len))
        self.network = network
        owner = None if self.host_uid is None else (self.host_uid, self.host_gid or 0)
        self.scratch = ScratchDirs(owner)
        self.capabilities = self.capabilities | {"isolates_filesystem", "isolates_network"}
        if self.host_uid is not None:
            # Steps run as a host uid that owns nothing of SauCI's, without
            # capabilities: a file SauCI owns and nobody may write stays as it
            # is, so a cache hit can be restored as hard links (core/cache_tree.py).
            self.capabilities = self.capabilities | {"foreign_uid"}

    def build_ended(self, workspace: Path) -> None:
        """The build in ``workspace`` ended: its HOME and /tmp go (the executor calls this)."""
        forget_hand_over(workspace)
        forget_hand_over(_scratch_home(workspace))
        self.scratch.release(workspace)

    def workspace_written(self, workspace: Path) -> None:
        """SauCI wrote into ``workspace`` or its build's HOME between steps (a
        cache restore, artifacts): the next step's hand-over walks them again
        (the executor calls this; an optional hook, as ``build_home``)."""
        workspace_written(workspace)
        workspace_written(_scratch_home(workspace))

    def close(self) -> None:
        self.scratch.release_all()

    def network_off_because(self, step: Step) -> str | None:
        """Who turned the network off for ``step``; None when it has the network."""
        if not self.network:  # a step's `network: true` cannot widen the policy
            return "server policy"
        if step.network is False:
            return "pipeline network: false"
        return None

    def _run(self, job: Job) -> StepResult:
        why = self.network_off_because(job.step)
        if why is None:
            return super()._run(job)
        watch = NetworkErrorWatch(job.log)
        result = super()._run(attrs.evolve(job, log=watch))
        if watch.seen and not result.ok and result.ended_by is None:
            note = network_note(why)
            return attrs.evolve(result, reason="; ".join(r for r in (result.reason, note) if r))
        return result

    # -- LocalSandbox hooks --------------------------------------------------

    def _hand_over(self, job: Job) -> None:
        """The workspace becomes the step's host uid's (when SauCI is root):
        walked in full at the build's first step, and again only after SauCI
        wrote into it (:func:`hand_over`)."""
        workspace = job.workspace
        build = job.env.get("SAUCI_BUILD_ID")
        if self.host_uid is not None and workspace.is_dir():
            check_reachable(workspace, self.host_uid, self.host_gid or 0)
            hand_over(workspace, self.host_uid, self.host_gid or 0, build)
            # Workspaces live in a directory others may pass through (0711):
            # this one is the step's alone.
            workspace.chmod(0o700)
        if workspace.is_dir():
            scratch = self.scratch.get(workspace)  # before the build's first step
            if self.host_uid is not None:  # what a cache restored into HOME is the step's
                hand_over(scratch.home, self.host_uid, self.host_gid or 0, build)

    def _handed_back(self, job: Job) -> None:
        """The step ran as the uid the workspace was handed to: nothing to do."""

    def build_home(self, workspace: Path) -> Path | None:
        """The host directory that is the build's HOME (``~/`` cache paths go there)."""
        return self.scratch.get(workspace).home if workspace.is_dir() else None

    def _extra_binds(self, env: Mapping[str, str]) -> list[str]:
        """Host directories bound read-write besides the workspace: the
        repository's pip/uv download cache (see sauci.core._step_cache)."""
        owners = () if self.host_uid is None else (self.host_uid,)
        tools = cache_bind(env, owners)
        if tools is None:
            return []
        if self.host_uid is not None:
            try:  # a data dir the step's uid cannot pass through: no shared cache
                check_reachable(Path(tools), self.host_uid, self.host_gid or 0)
            except SandboxError as exc:
                log.info("cache_dir_unreachable", path=tools, reason=str(exc))
                return []
            hand_over_tools(Path(tools), self.host_uid, self.host_gid or 0)
        return ["--bind", tools, tools]

    def _command(
        self, step: Step, workspace: Path, cwd: Path, env: Mapping[str, str]
    ) -> tuple[list[str], Path]:
        ws = os.path.abspath(workspace)
        argv = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        scratch = self.scratch.get(Path(ws))
        argv += ["--bind", str(scratch.tmp), "/tmp"]
        parent = os.path.dirname(ws)
        # /home is always covered: the step's HOME is made in it.
        for path in sorted({*self.hide, parent, "/home"} - {"/", "/tmp"}, key=len):
            if os.path.islink(path):  # /var/run -> /run: hide the target instead
                continue
            if os.path.isdir(path):
                argv += ["--tmpfs", path]
            elif os.path.lexists(path):
                argv += ["--ro-bind", "/dev/null", path]
        # The host's HOME (and a TMPDIR passed through from the host) are
        # hidden or shared inside: the step's are its build's own.
        argv += ["--bind", str(scratch.home), HOME, "--setenv", "HOME", HOME]
        if "TMPDIR" in env and env["TMPDIR"] == os.environ.get("TMPDIR"):
            argv += ["--unsetenv", "TMPDIR"]
        argv += ["--bind", ws, ws, *self._extra_binds(env)]
        argv += ["--chdir", os.path.abspath(cwd), "--unshare-all"]
        if self.network_off_because(step) is None:
            argv.append("--share-net")
        argv += ["--unshare-user", "--disable-userns"]
        argv += ["--uid", str(self.uid), "--gid", str(self.gid), "--cap-drop", "ALL"]
        # bwrap sets PWD after --chdir; put the variable back as the step's env has it.
        pwd = env.get("PWD")
        fix_pwd = [self.env, "-u", "PWD"] if pwd is None else [self.env, f"PWD={pwd}"]
        argv += ["--die-with-parent", "--new-session", "--", *fix_pwd, *step.shell, step.script()]
        if self.setpriv is not None:
            ids = [f"--reuid={self.host_uid}", f"--regid={self.host_gid}", "--clear-groups"]
            argv = [self.setpriv, *ids, "--", *argv]
        return argv, Path("/")

    def _terminate(self, tree: StepCgroup | ProcessTree) -> None:
        # Not bwrap itself: it dies on SIGTERM and its death SIGKILLs the
        # whole sandbox at once, which would take the step's grace period away.
        for pid in tree.pids():
            if _comm(pid) == "bwrap":
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, _signal.SIGTERM)

    def _exit_status(self, returncode: int) -> tuple[int | None, int | None]:
        # bwrap exits with 128 + n when the command was killed by signal n
        # (as Docker does); a command that itself exits 128 + n reads the same.
        if 128 < returncode <= 128 + 64:
            return None, returncode - 128
        return super()._exit_status(returncode)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def check_reachable(workspace: Path, uid: int, gid: int) -> None:
    """bwrap, running as ``uid``, must be able to walk to the workspace to bind it."""
    for directory in reversed(workspace.parents):
        st = directory.stat()
        if st.st_mode & stat.S_IXOTH:
            continue
        if st.st_uid == uid and st.st_mode & stat.S_IXUSR:
            continue
        if st.st_gid == gid and st.st_mode & stat.S_IXGRP:
            continue
        raise SandboxError(
            f"the namespace sandbox runs steps as host uid {uid}, which cannot reach "
            f"the workspace {str(workspace)!r}: {str(directory)!r} has mode "
            f"{stat.S_IMODE(st.st_mode):o}; allow traversal with `chmod o+x {directory}`, "
            "or give SauCI a data dir outside it (--data-dir /var/lib/sauci)"
        )


def _scratch_home(workspace: Path) -> Path:
    return scratch_path(workspace) / "home"
