"""Shared helpers of the fake Solo5/MirageOS tools: ELF notes, manifests, messages."""

from __future__ import annotations

import json
import struct
import sys

VERSION = "v0.12.1-7-g469c1a8"
ABI_TARGETS = {1: "hvt", 2: "spt", 3: "virtio", 4: "muen", 6: "xen"}
ABI_VERSIONS = {"hvt": 2, "spt": 2, "virtio": 1, "muen": 4, "xen": 1}
MFT_TYPES = {1: "BLOCK_BASIC", 2: "NET_BASIC"}
ABI1, MFT1 = 0x31494241, 0x3154464D
PT_NOTE, PT_INTERP = 4, 3


class ElfError(Exception):
    """An executable the Solo5 tools refuse; the message is the recorded text."""


def die(prog: str, *lines: str, status: int = 1) -> None:
    for line in lines:
        sys.stderr.write(f"{prog}: {line}\n")
    sys.exit(status)


def phdrs(data: bytes) -> list[tuple[int, int, int, int]]:
    """(type, offset, vaddr, filesz) of each program header of an ELF64 LSB executable."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ElfError("invalid executable: invalid or unsupported executable (elf header invalid while loading note)")
    e_type, = struct.unpack_from("<H", data, 16)
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    if e_type != 2 or e_phoff == 0:
        raise ElfError("invalid executable: invalid or unsupported executable (elf header invalid while loading note)")
    out = []
    for i in range(e_phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, e_phoff + i * e_phentsize)
        out.append((p_type, p_offset, p_vaddr, p_filesz))
    return out


def find_note(data: bytes, note_type: int) -> bytes | None:
    """The desc of the Solo5 note of ``note_type``; empty note segments are errors, as upstream."""
    for index, (p_type, offset, _vaddr, filesz) in enumerate(phdrs(data)):
        if p_type != PT_NOTE:
            continue
        if filesz < 12:
            raise ElfError(f"invalid executable: phdr[{index}].p_filesz note does not fall within valid size ({filesz} < 12)")
        pos, end = offset, offset + filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name = data[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            desc_at = pos + 12 + ((namesz + 3) & ~3)
            if name == b"Solo5" and ntype == note_type:
                return data[desc_at : desc_at + descsz]
            pos = desc_at + ((descsz + 3) & ~3)
    return None


def read_binary(prog: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        die(prog, f"{path}: Could not open: {e.strerror}")
    raise AssertionError


def abi_of(data: bytes) -> tuple[str, int] | None:
    desc = find_note(data, ABI1)
    if desc is None or len(desc) < 8:
        return None
    target, version = struct.unpack_from("<II", desc)
    return ABI_TARGETS.get(target, str(target)), version


def manifest_of(data: bytes) -> list[tuple[str, str]] | None:
    """The declared devices (name, type), without the reserved first entry."""
    desc = find_note(data, MFT1)
    if desc is None:
        return None
    _reserved, _version, entries = struct.unpack_from("<III", desc)
    devices = []
    for i in range(1, entries):
        raw = desc[12 + 104 * i : 12 + 104 * (i + 1)]
        name = raw[:68].split(b"\0")[0].decode()
        mtype, = struct.unpack_from("<I", raw, 68)
        devices.append((name, MFT_TYPES.get(mtype, str(mtype))))
    return devices


def manifest_json(devices: list[tuple[str, str]]) -> str:
    lines = ['{', '  "type": "solo5.manifest",', '  "version": 1,', '  "devices": [']
    lines += [f'    {{ "name": "{n}", "type": "{t}" }}' + ("," if i + 1 < len(devices) else "")
              for i, (n, t) in enumerate(devices)]
    return "\n".join([*lines, "  ]", "}"]) + "\n"


def load_json(path: str) -> object:
    with open(path) as f:
        return json.load(f)
