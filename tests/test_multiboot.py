"""check_multiboot(): finding the Multiboot v1 header and refusing what is not one."""

from __future__ import annotations

import struct

import pytest

from ukbuild.errors import BuildError
from ukbuild.multiboot import FLAG_AOUT_KLUDGE, check_multiboot

MAGIC = 0x1BADB002


def header(flags: int, *extra: int, checksum: int | None = None) -> bytes:
    if checksum is None:
        checksum = -(MAGIC + flags) & 0xFFFFFFFF
    return struct.pack(f"<III{len(extra)}I", MAGIC, flags, checksum, *extra)


def elf(elf_class: int) -> bytes:
    return b"\x7fELF" + bytes([elf_class]) + bytes(59)


def test_finds_aligned_header() -> None:
    """A header at any 4-byte boundary in the first 8 KiB is found."""
    data = elf(1) + bytes(4096 - 64) + header(2) + bytes(100)
    found = check_multiboot(data)
    assert (found.offset, found.flags, found.elf_class, found.aout) == (4096, 2, 32, None)


def test_not_elf() -> None:
    """A raw binary has no ELF class."""
    assert check_multiboot(header(0)).elf_class is None


def test_aout_kludge_addresses() -> None:
    """The a.out kludge fields are reported with the file offset they load from."""
    data = (
        elf(2)
        + bytes(64)
        + header(FLAG_AOUT_KLUDGE, 0x100080, 0x100000, 0x100400, 0x101000, 0x100020)
    )
    data += bytes(0x400 - 128 - 32)
    found = check_multiboot(data)
    assert found.elf_class == 64
    assert found.qemu_loadable
    assert found.aout is not None
    assert found.aout.load_offset == 0
    assert found.aout.entry_addr == 0x100020


def test_elf64_without_kludge_is_not_qemu_loadable() -> None:
    """QEMU refuses ELF64 without the kludge; GRUB and mboot.c32 accept it."""
    assert not check_multiboot(elf(2) + header(0)).qemu_loadable


def reason_and_message(data: bytes) -> tuple[str, str]:
    with pytest.raises(BuildError) as excinfo:
        check_multiboot(data, origin="app.elf")
    assert excinfo.value.hint
    return excinfo.value.reason, str(excinfo.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "no Multiboot v1 header"),
        (elf(1) + bytes(8192) + header(0), "first 8192 bytes"),
        (bytes(2) + header(0), "no Multiboot v1 header"),  # not 4-byte aligned
        (header(0, checksum=1), "bad checksum"),
        (header(1 << 5), "unknown features"),
        (header(FLAG_AOUT_KLUDGE, 0x1000, 0x2000, 0, 0, 0x2000), "inconsistent a.out kludge"),
        (header(FLAG_AOUT_KLUDGE, 0x1000, 0x1000, 0, 0, 0x9000) + bytes(64), "inconsistent a.out"),
        (header(FLAG_AOUT_KLUDGE), "address fields are cut off"),
    ],
    ids=["empty", "too-far", "unaligned", "checksum", "flags", "header-addr", "entry", "cut"],
)
def test_refused(data: bytes, words: str) -> None:
    """Anything that is not a loadable Multiboot kernel is a clear not-multiboot error."""
    reason, message = reason_and_message(data)
    assert reason == "not-multiboot"
    assert message.startswith("app.elf: not a Multiboot kernel")
    assert words in message
