"""NamespaceSandbox: LocalSandbox's lifetime and limits, plus Linux namespaces via bubblewrap.

The step sees the host's root read-only, a private /tmp, its workspace
writable, no network (unless ``step.network``), its own pid, ipc and uts
namespaces, uid 1000 with no capabilities. See docs/sandboxes.md for what
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

from sauci._logging import get_logger
from sauci.core.models import Step
from sauci.exceptions import SandboxError
from sauci.sandbox._cache_bind import cache_bind
from sauci.sandbox._proctree import StepCgroup
from sauci.sandbox._pscan import ProcessTree
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
DEFAULT_TMP_SIZE = 1 << 30


class NamespaceSandbox(LocalSandbox):
    """Runs each step under ``bwrap`` in new namespaces, in LocalSandbox's cgroup.

    ``host_uid``/``host_gid``: the unprivileged host ids the step runs as when
    SauCI is root (default :data:`DEFAULT_HOST_UID`); ignored otherwise (the
    step then runs as SauCI's own uid, which is what bwrap can map). ``uid``
    and ``gid`` are the ids the step sees. ``hide`` lists host paths covered
    inside the sandbox (add SauCI's data directory); the workspace's parent
    directory is always covered, so other builds' workspaces are not
    visible. ``tmp_size`` caps the private /tmp (it is memory, charged to
    the step's memory limit). Other keyword arguments go to LocalSandbox
    (``grace``, ``limits``, ``use_cgroups``, ``cgroup_prefix``, ...).
    """

    kind = "namespace"

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
        tmp_size: int = DEFAULT_TMP_SIZE,
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
        self.tmp_size = tmp_size
        self.capabilities = self.capabilities | {"isolates_filesystem", "isolates_network"}

    # -- LocalSandbox hooks --------------------------------------------------

    def _hand_over(self, workspace: Path) -> None:
        """The workspace becomes the step's host uid's (when SauCI is root)."""
        if self.host_uid is not None and workspace.is_dir():
            check_reachable(workspace, self.host_uid, self.host_gid or 0)
            adopt_workspace(workspace, self.host_uid, self.host_gid or 0)
            # Workspaces live in a directory others may pass through (0711):
            # this one is the step's alone.
            workspace.chmod(0o700)

    def _extra_binds(self, env: Mapping[str, str]) -> list[str]:
        """Host directories bound read-write besides the workspace: the
        repository's pip/uv download cache (see sauci.core._step_cache)."""
        owners = () if self.host_uid is None else (self.host_uid,)
        tools = cache_bind(env, owners)
        if tools is None:
            return []
        if self.host_uid is not None:
            adopt_workspace(Path(tools), self.host_uid, self.host_gid or 0)
        return ["--bind", tools, tools]

    def _command(
        self, step: Step, workspace: Path, cwd: Path, env: Mapping[str, str]
    ) -> tuple[list[str], Path]:
        ws = os.path.abspath(workspace)
        argv = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        argv += ["--size", str(self.tmp_size), "--tmpfs", "/tmp"]
        parent = os.path.dirname(ws)
        for path in sorted({*self.hide, parent} - {"/", "/tmp"}, key=len):
            if os.path.islink(path):  # /var/run -> /run: hide the target instead
                continue
            if os.path.isdir(path):
                argv += ["--tmpfs", path]
            elif os.path.lexists(path):
                argv += ["--ro-bind", "/dev/null", path]
        argv += ["--bind", ws, ws, *self._extra_binds(env)]
        argv += ["--chdir", os.path.abspath(cwd), "--unshare-all"]
        if step.network:
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


def adopt_workspace(workspace: Path, uid: int, gid: int) -> int:
    """Give every file of ``workspace`` to ``uid:gid``; returns how many changed.

    Walks with directory file descriptors and never follows a symlink, so a
    step running at the same time in this workspace cannot redirect the walk
    to files outside it. Files with more than one hard link are left alone:
    the other link may be outside (a git object shared with the clone cache),
    and giving it away would let a step change it.
    """
    changed = skipped = 0
    top = os.lstat(workspace)
    if top.st_uid != uid or top.st_gid != gid:
        os.chown(workspace, uid, gid, follow_symlinks=False)
        changed += 1
    for _, dirs, files, dirfd in os.fwalk(workspace, follow_symlinks=False):
        for name in (*dirs, *files):
            try:
                st = os.lstat(name, dir_fd=dirfd)
            except FileNotFoundError:
                continue
            if st.st_uid == uid and st.st_gid == gid:
                continue
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                skipped += 1
                continue
            os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
            changed += 1
    if skipped:
        log.info("workspace_files_not_adopted", workspace=str(workspace), hard_linked=skipped)
    return changed
