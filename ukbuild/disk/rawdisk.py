"""Raw BIOS-bootable disk images for Multiboot kernels: MBR + FAT16 + syslinux or GRUB.

The layout follows oci-and-images.md §7.3 ("hybrid"): Python writes the MBR
(syslinux's mbr.bin plus one bootable partition at 1 MiB) and a FAT16 file
system holding syslinux.cfg, mboot.c32, libcom32.c32, the kernel and any
extra files; the only tool run is ``syslinux --offset 1048576 --install``.
With ``bootloader="grub"`` (§7.4) the MBR code is GRUB's boot.img, the core
image from ``grub-mkimage`` (configuration embedded) fills the gap before
the partition, and the FAT holds the kernel and the extra files; see
:mod:`ukbuild.disk.grub` for how GRUB re-quotes command lines.
No mounts, no loop devices.  The same inputs give the same bytes: every
timestamp comes from ``epoch``, and the IDs from the label and ``epoch``.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable
from typing import Final, Literal

from ukbuild.disk import grub, syslinux
from ukbuild.disk.fat import FatVolume
from ukbuild.disk.mbr import BOOT_CODE_SIZE, SECTOR, Partition, mbr
from ukbuild.disk.output import DEFAULT_EPOCH, atomic_output
from ukbuild.errors import EmitError
from ukbuild.multiboot import check_multiboot

PARTITION_START: Final = 2048  # sectors: 1 MiB
MIN_SIZE_MIB: Final = 8
# syslinux --install adds ldlinux.sys (60 KB) and ldlinux.c32 (120 KB).
_INSTALLER_BYTES: Final = 256 * 1024
_GRUB_RESERVED_NAMES: Final = (grub.KERNEL_NAME,)
_RESERVED_NAMES: Final = (
    "syslinux.cfg",
    "mboot.c32",
    "libcom32.c32",
    syslinux.KERNEL_NAME,
    "ldlinux.sys",
    "ldlinux.c32",
)


def _ids(label: str, epoch: int) -> tuple[int, int]:
    """The MBR disk signature and FAT volume ID: derived, so reproducible."""
    seed = f"{label}\0{epoch}".encode()
    return zlib.crc32(b"mbr\0" + seed), zlib.crc32(b"fat\0" + seed)


def write_raw_disk(
    out: str | os.PathLike[str],
    kernel: bytes,
    *,
    cmdline: str = "",
    size_mib: int | None = None,
    label: str = "UKBOOT",
    extra_files: Iterable[tuple[str, bytes]] = (),
    bootloader: Literal["syslinux", "grub"] = "syslinux",
    epoch: int = DEFAULT_EPOCH,
) -> None:
    """Write a raw disk image at ``out`` that boots the Multiboot ``kernel`` with ``cmdline``.

    The kernel sees ``kernel.elf <cmdline>`` (mboot.c32 passes the file name
    first, as QEMU's ``-kernel`` passes its path; for GRUB, ukbuild adds it).
    ``size_mib`` None picks the smallest size of at least 8 MiB that holds
    everything.
    ``extra_files`` are (path in the FAT file system, contents) pairs.

    Raises:
        EmitError: the kernel is not Multiboot (``not-multiboot``), the
            command line cannot pass through the boot loader (``bad-cmdline``),
            a boot loader file or tool is missing
            (``bootloader-missing``), or the files do not fit.
    """
    if bootloader not in ("syslinux", "grub"):
        msg = f"unknown boot loader {bootloader!r} for a raw disk; the ones supported are syslinux and grub"
        raise EmitError(msg, reason="bad-bootloader")
    info = check_multiboot(kernel, error=EmitError)
    extra_files = tuple(extra_files)
    core = b""
    if bootloader == "grub":
        syslinux.check_extra_files(extra_files, _GRUB_RESERVED_NAMES)
        files = [(grub.KERNEL_NAME, kernel), *extra_files]
        boot_code = grub.boot_image()[: BOOT_CODE_SIZE]
        core = grub.core_image(cmdline, (PARTITION_START - 1) * SECTOR)
    else:
        syslinux.check_extra_files(extra_files, _RESERVED_NAMES)
        files = [
            (
                "syslinux.cfg",
                syslinux.config(syslinux.KERNEL_NAME, cmdline, aout=info.loads_by_aout).encode(),
            ),
            ("mboot.c32", syslinux.read_file("mboot.c32")),
            ("libcom32.c32", syslinux.read_file("libcom32.c32")),
            (syslinux.KERNEL_NAME, kernel),
            *extra_files,
        ]
        boot_code = syslinux.read_file("mbr.bin")
    if size_mib is None:
        payload = sum(len(data) + 32 * 1024 for _, data in files) + _INSTALLER_BYTES
        size_mib = max(MIN_SIZE_MIB, 1 + math.ceil(payload * 1.1 / (1 << 20)))
    total_sectors = size_mib * (1 << 20) // SECTOR
    if total_sectors <= PARTITION_START:
        raise EmitError(f"a disk of {size_mib} MiB is too small", reason="bad-disk-size")
    partition = Partition(PARTITION_START, total_sectors - PARTITION_START)
    disk_signature, volume_id = _ids(label, epoch)
    volume = FatVolume(
        partition.sectors, files, volume_id, label, epoch, hidden_sectors=PARTITION_START
    )
    with atomic_output(out) as tmp:
        with tmp.open("r+b") as f:
            f.truncate(total_sectors * SECTOR)
            f.write(mbr(boot_code, disk_signature, [partition]))
            volume.write(f, PARTITION_START * SECTOR)
            f.seek(SECTOR)
            f.write(core)
        if bootloader == "syslinux":
            syslinux.install(tmp, PARTITION_START * SECTOR, epoch=epoch)
