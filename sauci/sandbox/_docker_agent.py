"""The step agent of DockerSandbox's kept containers: one shell process,
started with the container, that runs each step the host sends it, so that a
step costs a fork in the container rather than a ``docker exec`` (dockerd
and runc set up a new process from scratch: 60-90 ms on a 2-core machine).

The agent is the host's own static busybox, bind-mounted read-only at
:data:`AGENT_PATH`, running :data:`AGENT_SCRIPT` with its ``sh``: nothing
is needed in the image beyond what the steps need (not every image has a
python or a tool to change uids; a static busybox runs in any of
them). It runs as root inside the container with no capability but
CAP_SETUID and CAP_SETGID (and no-new-privileges), which it uses only to
become the step's uid (``busybox nsenter -S -G``, which also clears the supplementary groups) before each step starts: the
step's uid may not signal, trace or open the fds of a root process, so it
cannot end the agent, read its requests, or hand it a command.

The protocol, over the container's attached stdin and stdout (a pipe each,
held by dockerd's shim). Once started, the agent says
``\\x1esauci-agent-ready``: a container whose agent cannot run (a daemon on
another host, where the host's busybox path is not that file) ends without
it, and the pool runs its steps with ``docker exec`` from then on.

- host to agent, one line per step: shell words the agent ``eval``s,
  ``N=<nonce>; set -- NAME=VALUE... ARGV...`` (every word quoted by the host,
  newlines as ``$NL``), read with ``read -r``; a line longer than
  :data:`INLINE_MAX` comes after ``L <bytes>`` on a line of its own;
- agent to host: the step's output (stdout and stderr as one stream, in the
  order written), then, once the step's own process has ended and every
  process of the step's uid has been killed, ``\\x1esauci-end-<nonce>
  <status> <swept>`` on a line of its own. The nonce is new for every step
  and never visible to the step (it lives only in the root agent's memory),
  so no output of a step can pass for its end; nothing of the step is left
  to write after it.

The step's stdin is /dev/null, never the agent's requests. A timeout or a
cancel is answered by the host as before (SIGTERM to the step's command
with a ``docker exec``, then the whole container killed after the grace
period); the container is then not reused. If the agent itself ends during
a step (the container was stopped or killed by something outside SauCI),
the host sees its output close without the end line and fails the step with
:class:`StepAgentLost`, never waiting on it.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import ssl
import struct
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sauci.exceptions import SandboxError
from sauci.sandbox._docker_daemon import frames

__all__ = [
    "AGENT_PATH",
    "AGENT_SCRIPT",
    "READY",
    "EndScanner",
    "StepAgentLost",
    "agent_entrypoint",
    "await_ready",
    "find_static_busybox",
    "request",
]

AGENT_PATH = "/.sauci/busybox"

# $1: the busybox, $2 $3: the steps' uid and gid. HOME as `docker exec` sets
# it: the uid's home in the image's /etc/passwd, else "/". K kills every
# process of the step's uid (run as that uid; a second form for shells that
# want `--` before -1); it is forked only when `left` (builtins only: no
# fork, no wakeup) finds a process of that uid. The agent's own messages (a shell's "Terminated"
# for a step it ran) are not the step's output: its stderr is /dev/null, and
# the step's own redirections are made in a subshell (ash prints a job's
# status with the job's redirections still in place).
AGENT_SCRIPT = r"""B=$1 U=$2 G=$3
exec 2>/dev/null
NL='
'
H=/
if [ -r /etc/passwd ]; then
  while IFS=: read -r n p u r; do
    if [ "$u" = "$U" ]; then r=${r#*:}; r=${r#*:}; H=${r%%:*}; break; fi
  done < /etc/passwd
fi
[ -n "$H" ] || H=/
K='n=0; while { kill -s KILL -1 || kill -s KILL -- -1; } 2>/dev/null && [ "$n" -lt 100 ]; do n=$((n+1)); done; exit 0'
printf '\036sauci-agent-ready\n'
left() {
  for d in /proc/[0-9]*; do
    while read -r k v r; do
      if [ "$k" = Uid: ]; then [ "$v" = "$U" ] && return 0; break; fi
    done < "$d/status"
  done 2>/dev/null
  return 1
}
while IFS= read -r q; do
  case $q in "L "*) q=$("$B" head -c "${q#L }") ;; esac
  N=
  eval "$q"
  [ -n "$N" ] || continue
  (exec "$B" nsenter -S "$U" -G "$G" "$B" env -u HOME HOME="$H" "$@" </dev/null 2>&1)
  c=$?
  s=1
  if left; then
    "$B" nsenter -S "$U" -G "$G" "$B" sh -c "$K" </dev/null || s=0
  fi
  printf '\036sauci-end-%s %s %s\n' "$N" "$c" "$s"
done
"""

_MARK = b"\x1esauci-end-"
READY = b"\x1esauci-agent-ready\n"
# The shell's `read` takes a pipe one byte per system call (about 0.4 ms of
# CPU per KiB here): a longer request is announced by its length and read
# by `busybox head -c`, in large reads, for one fork.
INLINE_MAX = 4096


class StepAgentLost(SandboxError):
    """The agent that runs a container's steps ended while a step ran (its
    container was stopped, killed or removed outside SauCI)."""


def agent_entrypoint(uid: int, gid: int) -> list[str]:
    return [AGENT_PATH, "sh", "-c", AGENT_SCRIPT, "sauci-agent", AGENT_PATH, str(uid), str(gid)]


def await_ready(sock: Any, timeout: float) -> tuple[bool, bytes]:
    """Read the started agent's first output: whether it said it is ready
    (else its container ended first, or ``timeout`` passed), and what it said."""
    fd = sock.fileno()
    tls = sock if isinstance(sock, ssl.SSLSocket) else None
    deadline = time.monotonic() + timeout
    buffer = bytearray()
    said = b""
    while READY not in said:
        left = deadline - time.monotonic()
        pending = tls is not None and tls.pending() > 0
        if left <= 0 or not (pending or select.select([fd], [], [], left)[0]):
            return False, said
        data = tls.recv(65536) if tls is not None else os.read(fd, 65536)
        if not data:
            return False, said
        buffer += data
        said += frames(buffer)
    return said.endswith(READY), said


def _word(text: str) -> str:
    """``text`` as one shell word on one line (a newline becomes ``$NL``)."""
    return shlex.quote(text).replace("\n", "'\"$NL\"'")


def request(nonce: str, env: Mapping[str, str], argv: Sequence[str]) -> bytes:
    """The line that asks the agent to run ``argv`` with ``env`` over the
    container's own environment."""
    words = [f"{name}={value}" for name, value in env.items()] + list(argv)
    line = f"N={nonce}; set -- " + " ".join(_word(w) for w in words) + "\n"
    data = line.encode("utf-8", "surrogateescape")
    if len(data) <= INLINE_MAX:
        return data
    return f"L {len(data)}\n".encode("ascii") + data


class EndScanner:
    """Finds the end line of the step with ``nonce`` in its output; holds
    back what could be the start of it until more arrives."""

    def __init__(self, nonce: str) -> None:
        self.prefix = _MARK + nonce.encode("ascii") + b" "
        self.held = b""
        self.code: int | None = None
        self.swept = False

    def __call__(self, data: bytes) -> tuple[bytes, int | None]:
        """The part of ``held + data`` that is the step's output, and its
        status once the end line has come (what follows it is dropped)."""
        buf = self.held + data
        at = buf.find(self.prefix)
        if at >= 0:
            eol = buf.find(b"\n", at)
            if eol < 0:
                self.held = buf[at:]
                return buf[:at], None
            fields = buf[at + len(self.prefix) : eol].split()
            self.held = b""
            try:
                self.code = int(fields[0])
                self.swept = fields[1:2] == [b"1"]
            except (IndexError, ValueError):
                self.code = -1
            return buf[:at], self.code
        start = buf.rfind(_MARK[:1], max(0, len(buf) - len(self.prefix) + 1))
        if start >= 0 and self.prefix.startswith(buf[start:]):
            self.held = buf[start:]
            return buf[:start], None
        self.held = b""
        return buf, None

    def rest(self) -> bytes:
        """What is held back, once no end line can come."""
        held, self.held = self.held, b""
        return held


def find_static_busybox() -> str | None:
    """A statically linked busybox on this host (it runs in any image), else None."""
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and os.path.isfile(candidate) and _static_elf(Path(candidate)):
            return os.path.realpath(candidate)
    return None


def _static_elf(path: Path) -> bool:
    """Whether ``path`` is a 64-bit little-endian ELF with no interpreter."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:6] != b"\x7fELF\x02\x01":
                return False
            (phoff,) = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except (OSError, struct.error):
        return False
    return all(
        struct.unpack_from("<I", table, i * phentsize)[0] != 3  # PT_INTERP
        for i in range(phnum)
        if (i + 1) * phentsize <= len(table)
    )
