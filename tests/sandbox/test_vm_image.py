"""The VM guest's boot files and QEMU command, without booting anything:
module load order from modules.dep, and what the command line shares."""

from __future__ import annotations

from pathlib import Path

from sauci.sandbox._vm_guest import Shape, qemu_command
from sauci.sandbox._vm_image import BootFiles, module_order, unsigned_module

MODULES_DEP = """\
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
"""


def test_modules_load_after_what_they_need() -> None:
    order = [
        p.rsplit("/", 1)[1]
        for p in module_order(MODULES_DEP, ["virtio_mmio", "9pnet_virtio", "9p", "absent"])
    ]
    assert [
        "virtio_ring.ko",
        "virtio.ko",
        "virtio_mmio.ko",
        "9pnet.ko",
        "9pnet_virtio.ko",
        "netfs.ko",
        "fscache.ko",
        "9p.ko",
    ] == order


def _command(network: bool, accel: str = "tcg") -> list[str]:
    boot = BootFiles(
        kernel=Path("/k"), initrd=Path("/i"), version="6.1", image=Path("/boot/vmlinuz-6.1")
    )
    return qemu_command(
        "qemu",
        boot,
        accel=accel,
        shape=Shape(memory_mib=640, cpus=2, network=network),
        workspace=Path("/ws"),
        agent=Path("/run/a.sock"),
        console=Path("/run/c.log"),
    )


def test_no_network_unless_the_shape_has_it() -> None:
    assert ["-nic", "none"] == _command(False)[-2:]
    assert ["-netdev", "user,id=net", "-device", "virtio-net-device,netdev=net"] == _command(True)[
        -4:
    ]


def test_usr_is_shared_read_only_and_the_workspace_read_write() -> None:
    cmd = _command(False)
    assert "local,id=usr,path=/usr,security_model=none,readonly=on" in cmd
    assert "local,id=workspace,path=/ws,security_model=none" in cmd
    assert ["-m", "640", "-smp", "2"] == cmd[cmd.index("-m") : cmd.index("-m") + 4]


def test_mitigations_are_off_only_under_emulation() -> None:
    def append(cmd: list[str]) -> str:
        return cmd[cmd.index("-append") + 1]

    assert "mitigations=off" in append(_command(False, "tcg"))
    assert "mitigations=off" not in append(_command(False, "kvm"))
    assert "tsc_early_khz" not in append(_command(False, "kvm"))


def test_address_randomisation_is_off_only_under_emulation() -> None:
    # TCG finds its translations by virtual address: a program mapped at a new
    # address each exec is translated anew each time.
    def words(cmd: list[str]) -> list[str]:
        return cmd[cmd.index("-append") + 1].split()

    assert "norandmaps" in words(_command(False, "tcg"))
    assert "norandmaps" not in words(_command(False, "kvm"))


def test_qemu_is_filtered_and_drops_root_when_asked() -> None:
    boot = BootFiles(kernel=Path("/k"), initrd=Path("/i"), version="6.1", image=Path("/v"))

    def command(run_as: tuple[int, int] | None) -> list[str]:
        return qemu_command(
            "qemu",
            boot,
            accel="tcg",
            shape=Shape(memory_mib=512, cpus=1, network=False),
            workspace=Path("/ws"),
            agent=Path("/a"),
            console=Path("/c"),
            run_as=run_as,
        )

    as_root = command((1000, 1000))
    assert ["-runas", "1000:1000"] == as_root[as_root.index("-runas") :][:2]
    assert "spawn=deny" in as_root[as_root.index("-sandbox") + 1]
    plain = command(None)
    assert "-runas" not in plain
    assert "elevateprivileges=deny" in plain[plain.index("-sandbox") + 1]


def test_a_modules_appended_signature_is_stripped() -> None:
    module = b"\x7fELF" + b"\x00" * 60 + b"code"
    signature = b"S" * 37
    info = bytes([0, 0, 2, 0, 0, 0, 0, 0]) + len(signature).to_bytes(4, "big")
    signed = module + signature + info + b"~Module signature appended~\n"
    assert module == unsigned_module(signed)
    assert module == unsigned_module(module)  # none: left as it is
