"""What a VmSandbox guest costs the host, read from /proc: QEMU's CPU time
(user + system, all its threads) and its memory by kind, for
``benchmarks/compute.py``.

Memory, from ``/proc/PID/smaps``:

- the guest's RAM: QEMU's anonymous mapping of ``-m`` MiB, resident as far
  as the guest has touched it (transparent huge pages round that up to 2 MiB);
- the TCG translation cache: QEMU's one writable and executable anonymous
  mapping (``-accel tcg,tb-size=N``), which KVM does not have;
- QEMU's own other anonymous memory: its heap, thread stacks, device state,
  and the pages of its libraries it relocated (copied on write);
- file-backed pages (QEMU's binary and libraries, the kernel and initramfs it
  maps) as they are on disk: the host's page cache, shared by every guest
  that boots the same files, so counted once per host rather than per guest.
"""

from __future__ import annotations

import os
import re

import attrs

MIB = 1024 * 1024
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


@attrs.frozen(kw_only=True)
class QemuMemory:
    """A guest's QEMU process's resident memory, in MiB, by kind."""

    guest_ram: float
    translation_cache: float
    own_anonymous: float
    file_backed: float

    @property
    def beyond_guest(self) -> float:
        """What one more guest costs the host beyond its own RAM: QEMU's anonymous memory."""
        return self.translation_cache + self.own_anonymous


def qemu_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process ``pid`` (every thread of it), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def qemu_rss_mib(pid: int) -> float | None:
    """The resident set of the process ``pid`` (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for text in fh:
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) / 1024
    return None


def qemu_memory(pid: int, guest_mib: int) -> QemuMemory:
    """QEMU's resident memory by kind (see the module docstring)."""
    mappings: list[dict[str, object]] = []
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            if _MAPPING.match(line):
                head = line.split()
                start, end = (int(x, 16) for x in head[0].split("-"))
                name = head[5] if len(head) > 5 else ""
                mappings.append({"size": end - start, "perm": head[1], "name": name})
            elif ":" in line and mappings:
                key, _, value = line.partition(":")
                parts = value.split()
                if parts and parts[0].isdigit():
                    mappings[-1][key] = int(parts[0]) * 1024
    anonymous = [m for m in mappings if not str(m["name"]).startswith("/")]
    ram = max(
        (m for m in anonymous if int(m["size"]) >= guest_mib * MIB),  # type: ignore[call-overload]
        key=lambda m: int(m["size"]),  # type: ignore[call-overload]
        default=None,
    )
    cache = [m for m in anonymous if m is not ram and m["perm"] == "rwxp"]
    others = [m for m in anonymous if m is not ram and m not in cache]
    files = [m for m in mappings if str(m["name"]).startswith("/")]

    def total(group: list[dict[str, object]], key: str) -> float:
        return sum(int(m.get(key, 0)) for m in group) / MIB  # type: ignore[call-overload]

    return QemuMemory(
        guest_ram=total([ram] if ram else [], "Rss"),
        translation_cache=total(cache, "Rss"),
        # A library's relocated pages are anonymous too (copied on write): QEMU's own.
        own_anonymous=total(others, "Anonymous") + total(files, "Anonymous"),
        file_backed=total(files, "Rss") - total(files, "Anonymous"),
    )
