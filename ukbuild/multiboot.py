"""Finding and checking the Multiboot v1 header of a kernel image.

The rules are the specification's (header 4-byte aligned and wholly inside
the first 8 KiB, magic + flags + checksum == 0 mod 2**32), plus what QEMU's
``-kernel`` needs: an ELF64 kernel is only accepted with the a.out kludge
(flag bit 16), which gives the load addresses in the header itself.
"""

from __future__ import annotations

import struct
from typing import Final

import attrs

from ukbuild.errors import BuildError, UkbuildError

HEADER_MAGIC: Final = 0x1BADB002
SEARCH_LIMIT: Final = 8192

FLAG_PAGE_ALIGN: Final = 1 << 0
FLAG_MEMORY_INFO: Final = 1 << 1
FLAG_VIDEO_MODE: Final = 1 << 2
FLAG_AOUT_KLUDGE: Final = 1 << 16
# Bits 0-15 are "required" features: a loader must refuse a kernel that sets
# one it does not know.  Only bits 0-2 are defined.
_UNKNOWN_REQUIRED: Final = 0xFFFF & ~(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE)

_HINT: Final = (
    "link a Multiboot v1 header (magic 0x1BADB002, flags, checksum) 4-byte aligned within "
    "the first 8192 bytes of the file; ELF64 kernels also need the a.out kludge (flag bit 16)"
)


@attrs.frozen
class AoutKludge:
    """The load addresses of a header with flag bit 16.

    ``load_offset`` is the file offset that is loaded at ``load_addr``.
    An ``load_end_addr`` of 0 means "to the end of the file", a
    ``bss_end_addr`` of 0 means "no bss".
    """

    header_addr: int
    load_addr: int
    load_end_addr: int
    bss_end_addr: int
    entry_addr: int
    load_offset: int


@attrs.frozen
class MultibootHeader:
    """A valid Multiboot v1 header: where it is and what it asks for.

    ``elf_class`` is 32 or 64 for ELF files and None for anything else.
    """

    offset: int
    flags: int
    elf_class: int | None
    aout: AoutKludge | None

    @property
    def loads_by_aout(self) -> bool:
        """An ELF64 kernel with the kludge: loaders must use its addresses (mboot.c32 ``-aout``)."""
        return self.elf_class == 64 and self.aout is not None

    @property
    def qemu_loadable(self) -> bool:
        """Whether ``qemu-system-x86_64 -kernel`` accepts the file (ELF64 needs the kludge)."""
        return self.elf_class != 64 or self.aout is not None


def _not_multiboot(
    origin: str, what: str, detail: str | None = None, error: type[UkbuildError] = BuildError
) -> UkbuildError:
    return error(
        f"{origin}: not a Multiboot kernel: {what}",
        detail=detail,
        hint=_HINT,
        reason="not-multiboot",
    )


def _elf_class(data: bytes) -> int | None:
    if data[:4] != b"\x7fELF" or len(data) < 5:
        return None
    return {1: 32, 2: 64}.get(data[4])


def _find_header(data: bytes, origin: str, error: type[UkbuildError]) -> tuple[int, int]:
    """The offset and flags of the first header with a good checksum."""
    bad: list[str] = []
    window = data[:SEARCH_LIMIT]
    for offset in range(0, len(window) - 11, 4):
        magic, flags, checksum = struct.unpack_from("<III", window, offset)
        if magic != HEADER_MAGIC:
            continue
        total = (magic + flags + checksum) & 0xFFFFFFFF
        if total == 0:
            return offset, flags
        bad.append(f"offset {offset:#x}: magic + flags + checksum = {total:#010x}, must be 0")
    if bad:
        raise _not_multiboot(origin, "the Multiboot header has a bad checksum", "\n".join(bad), error)
    size = f"{len(data)}-byte file" if len(data) < SEARCH_LIMIT else "first 8192 bytes"
    raise _not_multiboot(origin, f"no Multiboot v1 header (magic 0x1BADB002) in the {size}", error=error)


def _check_aout(data: bytes, offset: int, origin: str, error: type[UkbuildError]) -> AoutKludge:
    if offset + 32 > min(len(data), SEARCH_LIMIT):
        what = "the header sets the a.out kludge flag, but its address fields are cut off"
        raise _not_multiboot(origin, what, error=error)
    header_addr, load_addr, load_end, bss_end, entry = struct.unpack_from("<5I", data, offset + 12)
    load_offset = offset - (header_addr - load_addr)
    end = load_end or load_addr + len(data) - load_offset
    problems = []
    if not load_addr <= header_addr or load_offset < 0:
        problems.append(
            f"header_addr {header_addr:#x} does not lie in the file after load_addr {load_addr:#x}"
        )
    elif load_end and not load_addr < load_end <= load_addr + len(data) - load_offset:
        problems.append(
            f"load_end_addr {load_end:#x} is not within the {len(data) - load_offset} bytes "
            f"loaded at {load_addr:#x}"
        )
    if bss_end and bss_end < end:
        problems.append(f"bss_end_addr {bss_end:#x} is below the end of the loaded data {end:#x}")
    if not load_addr <= entry < max(end, bss_end):
        problems.append(f"entry_addr {entry:#x} is outside the loaded image")
    if problems:
        raise _not_multiboot(origin, "inconsistent a.out kludge addresses", "\n".join(problems), error)
    return AoutKludge(header_addr, load_addr, load_end, bss_end, entry, load_offset)


def check_multiboot(
    data: bytes, *, origin: str = "kernel", error: type[UkbuildError] = BuildError
) -> MultibootHeader:
    """Find and check the Multiboot v1 header of the kernel image ``data``.

    ``origin`` (e.g. the file name) starts every error message; ``error`` is
    the exception class raised (an emitter reports an ``EmitError``).

    Raises:
        BuildError: with ``reason="not-multiboot"`` when there is no valid
            header, it asks for features no loader knows, or its a.out
            kludge addresses do not describe the file.
    """
    offset, flags = _find_header(data, origin, error)
    unknown = flags & _UNKNOWN_REQUIRED
    if unknown:
        raise _not_multiboot(
            origin,
            f"the header requires unknown features (flags {flags:#010x}, bits {unknown:#06x})",
            error=error,
        )
    aout = _check_aout(data, offset, origin, error) if flags & FLAG_AOUT_KLUDGE else None
    return MultibootHeader(offset=offset, flags=flags, elf_class=_elf_class(data), aout=aout)
