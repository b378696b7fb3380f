"""A FAT16 file system writer, in pure Python and deterministic.

Everything that mkfs tools take from the clock or from randomness is an
argument here: the volume ID, the label and the timestamp (one for every
entry).  Files are laid out contiguously in sorted path order, so the same
files give the same bytes.  Names must be 8.3 names; an all-lower-case base
or extension is stored with the Windows NT case flags, as mtools reads them.

The writer only writes non-zero regions into a (sparse) file.
"""

from __future__ import annotations

import datetime
import math
import re
import struct
from collections.abc import Iterable
from typing import BinaryIO, Final

import attrs

from ukbuild.errors import EmitError

SECTOR: Final = 512
RESERVED_SECTORS: Final = 1
NUM_FATS: Final = 2
ROOT_ENTRIES: Final = 512
SECTORS_PER_TRACK: Final = 32  # the geometry mformat and syslinux use for small disks
HEADS: Final = 64
MIN_CLUSTERS: Final = 4085  # fewer clusters would make it FAT12
MAX_CLUSTERS: Final = 65524  # more would make it FAT32
FAT_EPOCH: Final = 315532800  # 1980-01-01T00:00:00Z, the earliest FAT date

ATTR_READ_ONLY: Final = 0x01
ATTR_VOLUME_ID: Final = 0x08
ATTR_DIRECTORY: Final = 0x10
ATTR_ARCHIVE: Final = 0x20
_NT_LOWER_BASE: Final = 0x08
_NT_LOWER_EXT: Final = 0x10
_ROOT_SECTORS: Final = ROOT_ENTRIES * 32 // SECTOR
_NAME_PART = re.compile(r"[A-Za-z0-9$%'\-_@~`!(){}^#&]+")
_LABEL = re.compile(r"[A-Z0-9 $%'\-_@~`!(){}^#&]{1,11}")


@attrs.frozen
class Geometry:
    """Where a FAT16 volume of ``total_sectors`` keeps its structures (in sectors)."""

    total_sectors: int
    sectors_per_cluster: int
    fat_sectors: int
    clusters: int

    @property
    def root_start(self) -> int:
        return RESERVED_SECTORS + NUM_FATS * self.fat_sectors

    @property
    def data_start(self) -> int:
        return self.root_start + _ROOT_SECTORS

    @property
    def cluster_bytes(self) -> int:
        return self.sectors_per_cluster * SECTOR

    @classmethod
    def for_size(cls, total_sectors: int) -> Geometry:
        """The smallest clusters that make a valid FAT16 volume of this size."""
        clusters = 0
        for spc in (1, 2, 4, 8, 16, 32, 64):
            fat_sectors = 1
            while True:
                data = total_sectors - RESERVED_SECTORS - NUM_FATS * fat_sectors - _ROOT_SECTORS
                clusters = max(0, data // spc)
                needed = math.ceil((clusters + 2) * 2 / SECTOR)
                if needed <= fat_sectors:
                    break
                fat_sectors = needed
            if clusters < MIN_CLUSTERS:
                break
            if clusters <= MAX_CLUSTERS:
                return cls(total_sectors, spc, fat_sectors, clusters)
        size = total_sectors * SECTOR
        msg = f"a FAT16 file system cannot be {size // 1024} KiB (it needs 2 MiB to 2 GiB)"
        raise EmitError(msg, hint="choose another disk size", reason="bad-disk-size")


def short_name(name: str, *, where: str) -> tuple[bytes, int]:
    """The 11-byte 8.3 directory name of ``name`` and its NT case flags."""
    base, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    problem = None
    if not base or (dot and not ext) or len(base) > 8 or len(ext) > 3:
        problem = "it is not an 8.3 name (up to 8 characters, a dot, up to 3 characters)"
    elif not _NAME_PART.fullmatch(base) or (ext and not _NAME_PART.fullmatch(ext)):
        problem = "it has characters a FAT short name cannot hold"
    elif any(part != part.lower() and part != part.upper() for part in (base, ext)):
        problem = "it mixes upper and lower case within the name or the extension"
    if problem:
        msg = f"{where}: cannot store {name!r} on FAT: {problem}"
        raise EmitError(msg, hint="rename the file, e.g. to config.jsn", reason="bad-file-name")
    flags = (_NT_LOWER_BASE if base != base.upper() else 0) | (
        _NT_LOWER_EXT if ext != ext.upper() else 0
    )
    return (base.upper().ljust(8) + ext.upper().ljust(3)).encode("ascii"), flags


def fat_datetime(epoch: int) -> tuple[int, int]:
    """The FAT (date, time) words of ``epoch`` in UTC, clamped to 1980..2107."""
    when = datetime.datetime.fromtimestamp(epoch, datetime.UTC) if epoch > FAT_EPOCH else None
    if when is None:
        return (1 << 5) | 1, 0  # 1980-01-01 00:00:00
    when = min(when, datetime.datetime(2107, 12, 31, 23, 59, 58, tzinfo=datetime.UTC))
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    return date, time


@attrs.define
class _File:
    name: str
    data: bytes
    cluster: int = 0


@attrs.define
class _Dir:
    path: str
    name: str
    entries: dict[str, _Dir | _File] = attrs.field(factory=dict)
    cluster: int = 0
    clusters: int = 0


def _tree(files: Iterable[tuple[str, bytes]]) -> _Dir:
    """The directory tree of ``files``, keyed by lower-cased names in sorted order."""
    root = _Dir("", "")
    for path, data in sorted(files):
        parts = path.strip("/").split("/")
        if any(part in ("", ".", "..") for part in parts):
            msg = f"{path!r}: not a clean relative path for a file on the disk"
            raise EmitError(msg, reason="bad-file-name")
        node = root
        dirs = parts if path.endswith("/") else parts[:-1]
        for i, part in enumerate(dirs):
            child = node.entries.setdefault(part.lower(), _Dir("/".join(parts[: i + 1]), part))
            if not isinstance(child, _Dir):
                msg = f"{path!r}: {'/'.join(parts[: i + 1])!r} is a file, not a directory"
                raise EmitError(msg, reason="file-clash")
            if child.name != part:
                msg = f"{path!r}: clashes with directory {child.path!r} (FAT names ignore case)"
                raise EmitError(msg, reason="file-clash")
            node = child
        if path.endswith("/"):
            continue
        if parts[-1].lower() in node.entries:
            msg = f"{path!r}: given twice, or clashes with a directory (FAT names ignore case)"
            raise EmitError(msg, reason="file-clash")
        node.entries[parts[-1].lower()] = _File(parts[-1], data)
    return root


def _file_tuple(files: Iterable[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
    return tuple(files)


@attrs.frozen
class FatVolume:
    """A FAT16 volume of ``total_sectors`` holding ``files``.

    ``files`` is a collection of (path in the volume, contents); directories
    are created as needed, and a path ending in ``/`` is a (possibly empty)
    directory.  ``hidden_sectors`` is the LBA at which the
    partition starts; boot code relies on it.
    """

    total_sectors: int
    files: tuple[tuple[str, bytes], ...] = attrs.field(converter=_file_tuple)
    volume_id: int
    label: str
    epoch: int
    hidden_sectors: int = 0

    def write(self, out: BinaryIO, offset: int) -> None:
        """Write the volume at byte ``offset`` of ``out``, which reads as zeros there."""
        if not _LABEL.fullmatch(self.label):
            msg = f"volume label {self.label!r} must be 1-11 upper-case letters, digits or spaces"
            raise EmitError(msg, reason="bad-label")
        geometry = Geometry.for_size(self.total_sectors)
        root = _tree(self.files)
        fat = [0xFFF8, 0xFFFF]
        chains: list[tuple[int, bytes]] = []
        self._allocate(root, geometry, fat, chains)
        fat_bytes = struct.pack(f"<{len(fat)}H", *fat)
        out.seek(offset)
        out.write(self._boot_sector(geometry))
        for i in range(NUM_FATS):
            out.seek(offset + (RESERVED_SECTORS + i * geometry.fat_sectors) * SECTOR)
            out.write(fat_bytes)
        out.seek(offset + geometry.root_start * SECTOR)
        out.write(self._directory(root, parent=None))
        for cluster, data in chains:
            out.seek(
                offset
                + (geometry.data_start + (cluster - 2) * geometry.sectors_per_cluster) * SECTOR
            )
            out.write(data)

    def _allocate(
        self, node: _Dir, geometry: Geometry, fat: list[int], chains: list[tuple[int, bytes]]
    ) -> None:
        """Give every subdirectory and file of ``node`` a contiguous cluster chain."""

        def chain(size: int) -> int:
            count = math.ceil(size / geometry.cluster_bytes)
            if count == 0:
                return 0
            first = len(fat)
            if first - 2 + count > geometry.clusters:
                used = (first - 2) * geometry.cluster_bytes
                msg = (
                    f"the files do not fit in the {self.total_sectors * SECTOR // 1024} KiB "
                    f"FAT volume ({used + size} bytes or more needed)"
                )
                raise EmitError(msg, hint="choose a larger disk size", reason="disk-full")
            fat.extend(range(first + 1, first + count))
            fat.append(0xFFFF)
            return first

        for child in node.entries.values():
            if isinstance(child, _Dir):
                child.clusters = math.ceil((len(child.entries) + 2) * 32 / geometry.cluster_bytes)
                child.cluster = chain(child.clusters * geometry.cluster_bytes)
            else:
                child.cluster = chain(len(child.data))
        for child in node.entries.values():
            if isinstance(child, _Dir):
                self._allocate(child, geometry, fat, chains)
                chains.append((child.cluster, self._directory(child, parent=node)))
            elif child.data:
                chains.append((child.cluster, child.data))

    def _entry(self, name11: bytes, attr: int, nt_flags: int, cluster: int, size: int) -> bytes:
        date, time = fat_datetime(self.epoch)
        return struct.pack(
            "<11sBBBHHHHHHHI",
            name11,
            attr,
            nt_flags,
            0,
            time,
            date,
            date,
            0,
            time,
            date,
            cluster,
            size,
        )

    def _directory(self, node: _Dir, parent: _Dir | None) -> bytes:
        """The directory entries of ``node`` (the root holds the volume label instead of dots)."""
        entries = []
        if parent is None:
            entries.append(
                self._entry(self.label.ljust(11).encode("ascii"), ATTR_VOLUME_ID, 0, 0, 0)
            )
        else:
            entries.append(self._entry(b".          ", ATTR_DIRECTORY, 0, node.cluster, 0))
            entries.append(self._entry(b"..         ", ATTR_DIRECTORY, 0, parent.cluster, 0))
        for child in node.entries.values():
            where = f"{node.path}/{child.name}".lstrip("/")
            name11, flags = short_name(child.name, where=where)
            if isinstance(child, _Dir):
                entries.append(self._entry(name11, ATTR_DIRECTORY, flags, child.cluster, 0))
            else:
                entries.append(
                    self._entry(name11, ATTR_ARCHIVE, flags, child.cluster, len(child.data))
                )
        if parent is None and len(entries) > ROOT_ENTRIES:
            count = len(entries) - 1
            msg = f"too many files in the root directory ({count}; at most {ROOT_ENTRIES - 1})"
            raise EmitError(msg, hint="put files into subdirectories", reason="disk-full")
        return b"".join(entries)

    def _boot_sector(self, geometry: Geometry) -> bytes:
        total = geometry.total_sectors
        sector = bytearray(SECTOR)
        struct.pack_into(
            "<3s8sHBHBHHBHHHII",
            sector,
            0,
            b"\xeb\x3c\x90",
            b"UKBUILD ",
            SECTOR,
            geometry.sectors_per_cluster,
            RESERVED_SECTORS,
            NUM_FATS,
            ROOT_ENTRIES,
            total if total < 0x10000 else 0,
            0xF8,
            geometry.fat_sectors,
            SECTORS_PER_TRACK,
            HEADS,
            self.hidden_sectors,
            total if total >= 0x10000 else 0,
        )
        struct.pack_into(
            "<BBBI11s8s",
            sector,
            36,
            0x80,
            0,
            0x29,
            self.volume_id,
            self.label.ljust(11).encode(),
            b"FAT16   ",
        )
        sector[510:512] = b"\x55\xaa"
        return bytes(sector)
