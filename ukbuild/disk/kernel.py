"""The few facts about a Multiboot kernel that a boot loader configuration needs."""

from __future__ import annotations

import struct
from typing import Final

import attrs

from ukbuild.errors import EmitError

_MAGIC: Final = 0x1BADB002
_AOUT_KLUDGE: Final = 1 << 16
_SEARCH: Final = 8192


@attrs.frozen
class KernelInfo:
    """``elf64``: an ELF64 file; ``aout_kludge``: the header carries load addresses."""

    elf64: bool
    aout_kludge: bool

    @property
    def use_aout(self) -> bool:
        """Whether mboot.c32 should load it by its kludge (``-aout``): ELF64 kernels with one."""
        return self.elf64 and self.aout_kludge


def inspect_kernel(data: bytes, *, origin: str = "kernel") -> KernelInfo:
    """Check that ``data`` has a Multiboot v1 header (4-byte aligned, first 8 KiB, checksum).

    Raises:
        EmitError: ``reason="not-multiboot"`` otherwise.
    """
    window = data[:_SEARCH]
    for offset in range(0, len(window) - 11, 4):
        magic, flags, checksum = struct.unpack_from("<III", window, offset)
        if magic == _MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
            elf64 = data[:5] == b"\x7fELF\x02"
            return KernelInfo(elf64=elf64, aout_kludge=bool(flags & _AOUT_KLUDGE))
    msg = f"{origin}: not a Multiboot kernel (no valid Multiboot v1 header in its first 8 KiB)"
    hint = "boot loaders here load Multiboot v1 kernels only; check that the right file was given"
    raise EmitError(msg, hint=hint, reason="not-multiboot")
