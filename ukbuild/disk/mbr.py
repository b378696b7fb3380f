"""The MBR: 440 bytes of boot code, a disk signature and a partition table."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import attrs

SECTOR: Final = 512
BOOT_CODE_SIZE: Final = 440
TYPE_FAT16_LBA: Final = 0x0E
# CHS geometry of the table: 64 heads and 32 sectors per track, as mformat and
# syslinux use for small disks.  QEMU guesses the BIOS geometry from these.
HEADS: Final = 64
SECTORS_PER_TRACK: Final = 32
_CHS_OVERFLOW: Final = (1023, 254, 63)


@attrs.frozen
class Partition:
    """One primary partition, in 512-byte sectors."""

    start: int
    sectors: int
    type: int = TYPE_FAT16_LBA
    bootable: bool = True


def _chs(lba: int) -> bytes:
    cylinder, rest = divmod(lba, HEADS * SECTORS_PER_TRACK)
    head, sector = divmod(rest, SECTORS_PER_TRACK)
    if cylinder > 1023:
        cylinder, head, sector = _CHS_OVERFLOW
    else:
        sector += 1
    return bytes([head, ((cylinder >> 2) & 0xC0) | sector, cylinder & 0xFF])


def mbr(boot_code: bytes, disk_signature: int, partitions: Sequence[Partition]) -> bytes:
    """The first sector of a disk: boot code (at most 440 bytes), signature, table, 0x55AA."""
    if len(boot_code) > BOOT_CODE_SIZE or len(partitions) > 4:
        msg = (
            f"boot code of {len(boot_code)} bytes or {len(partitions)} partitions do not fit an MBR"
        )
        raise ValueError(msg)
    sector = bytearray(SECTOR)
    sector[: len(boot_code)] = boot_code
    struct.pack_into("<I", sector, BOOT_CODE_SIZE, disk_signature)
    for i, part in enumerate(partitions):
        entry = (
            bytes([0x80 if part.bootable else 0])
            + _chs(part.start)
            + bytes([part.type])
            + _chs(part.start + part.sectors - 1)
            + struct.pack("<II", part.start, part.sectors)
        )
        sector[446 + 16 * i : 462 + 16 * i] = entry
    sector[510:] = b"\x55\xaa"
    return bytes(sector)
