"""The VmSandbox guest's boot files: the host's Debian kernel, and an initramfs
SauCI builds once per kernel and agent and caches under its data directory.

The initramfs holds busybox-static (for the init script), the kernel modules
the guest needs (virtio transport and console, 9p, virtio-net, in the order
``modules.dep`` gives), a few lines of /etc, and the agent
(:mod:`sauci.sandbox._vm_agent`). Everything else the guest runs (python3,
the step's tools) comes from the host's /usr, shared read-only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import attrs

from sauci.exceptions import SandboxError

__all__ = ["BootFiles", "boot_files", "find_kernel", "module_order", "unsigned_module"]

# The modules the guest loads, by name; their dependencies come from modules.dep.
# microvm's devices are virtio-mmio: no PCI. The network's only when a step asks.
MODULES = ("virtio_mmio", "virtio_console", "9pnet_virtio", "9p")
NET_MODULES = ("virtio_net",)
AGENT = Path(__file__).with_name("_vm_agent.py")
# The guest's python3 is the host's (its /usr): the agent is compiled by it
# when the initramfs is built, since compiling it in an emulated CPU takes
# most of a second of the boot.
GUEST_PYTHON = Path("/usr/bin/python3")
COMPILE = "import py_compile, sys; py_compile.compile(sys.argv[1], sys.argv[2], doraise=True)"
UID = 1000  # the step's uid and gid inside the guest
# The host's dynamic linker cache, for the host's /usr the guest sees: without
# it every exec of a dynamic program searches a dozen directories over 9p.
LD_SO_CACHE = Path("/etc/ld.so.cache")

# Each command the init script runs is a fork and an exec of busybox, tens
# of milliseconds in an emulated CPU: the modules are loaded, then one
# `mount -a` mounts everything /etc/fstab lists (FSTAB), and the shell's
# builtins read the files. The host's /usr and the workspace are nosuid: a
# setuid program of the host's must not make a step the guest's root (who
# could write to the agent's port).
INIT = """#!/sauci/bin/sh
export PATH=/sauci/bin
while read m; do insmod /sauci/mod/$m.ko 2>/dev/null; done < /sauci/modules
mount -t proc proc /proc
read cmdline < /proc/cmdline
case "$cmdline" in *sauci.net=1*)
  while read m; do insmod /sauci/mod/$m.ko 2>/dev/null; done < /sauci/modules-net ;;
esac
mount -a || echo "sauci-init: cannot mount everything /etc/fstab lists"
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 down
fi
exec /usr/bin/python3 -S -E /sauci/agent.pyc sauci
"""

NINEP = "trans=virtio,version=9p2000.L,msize=262144,nosuid,nodev"
FSTAB = f"""\
sys /sys sysfs defaults 0 0
dev /dev devtmpfs defaults 0 0
usr /usr 9p {NINEP},ro,cache=loose 0 0
workspace /workspace 9p {NINEP},cache=none,access=any 0 0
none /sys/fs/cgroup cgroup2 favordynmods 0 0
tmp /tmp tmpfs mode=1777,nosuid,nodev 0 0
home /home/sauci tmpfs mode=0755,uid={UID},gid={UID},nosuid,nodev 0 0
"""
# favordynmods: moving a step into its cgroup does not wait for an RCU grace
# period (tens of milliseconds a step, most of a step's cost in the guest).

ETC = {
    "passwd": f"root:x:0:0:root:/root:/bin/sh\nsauci:x:{UID}:{UID}:sauci:/home/sauci:/bin/sh\n",
    "group": f"root:x:0:\nsauci:x:{UID}:\n",
    "hosts": "127.0.0.1 localhost\n",
    "resolv.conf": "nameserver 10.0.2.3\n",
    "hostname": "sauci-vm\n",
    "fstab": FSTAB,
}


@attrs.frozen(kw_only=True)
class BootFiles:
    """A kernel and the initramfs built for it."""

    kernel: Path  # what QEMU boots: the uncompressed vmlinux when it can (PVH)
    initrd: Path
    version: str
    image: Path  # the kernel as installed (/boot/vmlinuz-*)


def find_kernel(kernel: str | Path | None = None) -> tuple[Path, str]:
    """The kernel to boot and its version: ``kernel`` when given, else the
    newest /boot/vmlinuz-* whose modules are installed."""
    if kernel is not None:
        path = Path(kernel)
        version = path.name.removeprefix("vmlinuz-")
        if not path.is_file():
            raise SandboxError(f"the VM kernel {str(path)!r} does not exist")
        return path, version
    found = []
    for path in Path("/boot").glob("vmlinuz-*"):
        version = path.name.removeprefix("vmlinuz-")
        if Path("/lib/modules", version, "modules.dep").is_file():
            found.append((_version_key(version), path, version))
    if not found:
        raise SandboxError(
            "no kernel for the VM sandbox: install one with "
            "apt-get install --no-install-recommends linux-image-amd64"
        )
    _, path, version = max(found)
    return path, version


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def module_order(modules_dep: str, wanted: Iterable[str]) -> list[str]:
    """The module files (relative to the modules directory) to load, each
    after what it depends on, from the text of ``modules.dep``."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        path, _, rest = line.partition(":")
        if not path:
            continue
        deps[path] = rest.split()
        by_name[_module_name(path)] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in reversed(deps.get(path, [])):  # modules.dep lists the deepest last
            visit(dep)
        order.append(path)

    for name in wanted:
        if name in by_name:
            visit(by_name[name])
    return order


def _module_name(path: str) -> str:
    return os.path.basename(path).split(".ko")[0].replace("-", "_")


def boot_files(cache_dir: Path, kernel: str | Path | None = None) -> BootFiles:
    """The kernel and its initramfs, built under ``cache_dir`` unless already there."""
    kernel_path, version = find_kernel(kernel)
    modules_dir = Path("/lib/modules", version)
    modules_dep = (modules_dir / "modules.dep").read_text()
    busybox = shutil.which("busybox")
    if busybox is None:
        raise SandboxError("busybox is needed for the VM guest: apt-get install busybox-static")
    if shutil.which("cpio") is None:
        raise SandboxError("cpio is needed to build the VM guest: apt-get install cpio")
    modules = module_order(modules_dep, MODULES)
    net_modules = [m for m in module_order(modules_dep, NET_MODULES) if m not in modules]
    digest = hashlib.sha256()
    for part in (
        version,
        INIT,
        repr(sorted(ETC.items())),
        AGENT.read_text(),
        *modules,
        "|",
        *net_modules,
    ):
        digest.update(part.encode() + b"\0")
    digest.update(Path(busybox).read_bytes())
    digest.update(_read_or_empty(LD_SO_CACHE))
    digest.update(_identity(GUEST_PYTHON).encode())
    initrd = cache_dir / f"initramfs-{version}-{digest.hexdigest()[:16]}.cpio"
    if not initrd.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        _build(initrd, modules_dir, modules, net_modules, Path(busybox))
    booted = _uncompressed(kernel_path, version, cache_dir) or kernel_path
    return BootFiles(kernel=booted, initrd=initrd, version=version, image=kernel_path)


def _uncompressed(kernel: Path, version: str, cache_dir: Path) -> Path | None:
    """The kernel's vmlinux, unpacked once, when QEMU can boot it directly (PVH).

    An emulated CPU takes seconds to unpack an xz bzImage; QEMU boots an ELF
    vmlinux that carries a PVH entry point without that step. None when the
    kernel has no PVH entry or cannot be unpacked (the bzImage is booted).
    """
    config = Path("/boot", f"config-{version}")
    try:
        if "CONFIG_PVH=y" not in config.read_text().splitlines():
            return None
        st = kernel.stat()
    except OSError:
        return None
    target = cache_dir / f"vmlinux-{version}-{st.st_size}-{int(st.st_mtime)}"
    if target.is_file():
        return target
    data = kernel.read_bytes()
    elf = _unpack(data)
    if elf is None or not elf.startswith(b"\x7fELF"):
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = _partial(target)
    partial.write_bytes(elf)
    os.replace(partial, target)
    return target


def _unpack(data: bytes) -> bytes | None:
    import gzip
    import lzma
    import zlib

    at = data.find(b"\xfd7zXZ\x00")
    if at >= 0:
        try:
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
        except lzma.LZMAError:
            return None
    at = data.find(b"\x1f\x8b\x08")
    if at >= 0:
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[at:])
        except (zlib.error, gzip.BadGzipFile):
            return None
    return None


def _build(
    target: Path, modules_dir: Path, modules: list[str], net_modules: list[str], busybox: Path
) -> None:
    with tempfile.TemporaryDirectory(prefix="sauci-vm-root-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the guest's /: made by mkdtemp, 0700
        for name in ("proc", "sys", "dev", "tmp", "home", "usr", "workspace", "etc", "root"):
            (root / name).mkdir()
        (root / "home" / "sauci").mkdir()
        for name in ("bin", "sbin", "lib", "lib64"):
            (root / name).symlink_to(f"usr/{name}")
        tools = root / "sauci" / "bin"
        tools.mkdir(parents=True)
        shutil.copy2(busybox, tools / "busybox")
        for applet in ("sh", "mount", "insmod", "mkdir", "chown", "ip", "cat", "echo"):
            (tools / applet).symlink_to("busybox")
        mod = root / "sauci" / "mod"
        mod.mkdir()
        unsigned = not _signatures_enforced(modules_dir.name)
        for path in (*modules, *net_modules):
            data = (modules_dir / path).read_bytes()
            (mod / os.path.basename(path)).write_bytes(unsigned_module(data) if unsigned else data)
        for name, paths in (("modules", modules), ("modules-net", net_modules)):
            names = [os.path.basename(p).removesuffix(".ko") for p in paths]
            (root / "sauci" / name).write_text("\n".join(names) + "\n")
        _compile_agent(root / "sauci" / "agent.pyc")
        for name, text in ETC.items():
            (root / "etc" / name).write_text(text)
        cache = _read_or_empty(LD_SO_CACHE)
        if cache:
            (root / "etc" / "ld.so.cache").write_bytes(cache)
        init = root / "init"
        init.write_text(INIT)
        init.chmod(0o755)
        (root / "root").chmod(0o700)
        partial = _partial(target)
        files = subprocess.run(["find", "."], cwd=root, check=True, capture_output=True).stdout
        with open(partial, "wb") as out:
            made = subprocess.run(
                ["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"],
                cwd=root,
                input=files,
                stdout=out,
                stderr=subprocess.PIPE,
                check=False,
            )
        if made.returncode != 0:
            partial.unlink(missing_ok=True)
            raise SandboxError(f"cannot build the VM initramfs: {made.stderr.decode().strip()}")
        os.replace(partial, target)


SIGNATURE_MAGIC = b"~Module signature appended~\n"


def _signatures_enforced(version: str) -> bool:
    """Whether the kernel refuses a module without a signature (its config says)."""
    try:
        config = Path("/boot", f"config-{version}").read_text().splitlines()
    except OSError:
        return True  # unknown: keep the signatures
    return "CONFIG_MODULE_SIG_FORCE=y" in config


def unsigned_module(module: bytes) -> bytes:
    """``module`` without its appended signature: an emulated CPU checks an
    RSA signature slowly, and the modules come from the host's own /lib/modules
    into an initramfs only SauCI writes. (Then the kernel notes itself tainted.)"""
    if not module.endswith(SIGNATURE_MAGIC):
        return module
    info = len(module) - len(SIGNATURE_MAGIC) - 12  # struct module_signature
    sig_len = int.from_bytes(module[info + 8 : info + 12], "big")
    return module[: info - sig_len]


def _compile_agent(target: Path) -> None:
    """The agent, compiled by the guest's python3 (the host's /usr/bin/python3)."""
    try:
        subprocess.run(
            [str(GUEST_PYTHON), "-S", "-E", "-c", COMPILE, str(AGENT), str(target)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise SandboxError(
            f"cannot compile the VM guest's agent with {GUEST_PYTHON} (the guest runs the "
            f"host's python3: apt-get install python3): {exc} {detail.decode(errors='replace')}"
        ) from exc


def _identity(path: Path) -> str:
    """Which file ``path`` is now (its target, size and time): the agent is compiled for it."""
    try:
        real = path.resolve()
        st = real.stat()
    except OSError:
        return ""
    return f"{real}|{st.st_size}|{st.st_mtime_ns}"


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _partial(target: Path) -> Path:
    """A file of its own beside ``target``, renamed onto it when complete: two
    sandboxes (processes or threads) building the same file never share one."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    os.close(fd)
    return Path(name)
