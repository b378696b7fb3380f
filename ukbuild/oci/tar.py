"""Deterministic layer tars and their compression.

The same entries always give the same bytes: entries are sorted, owned by
0:0 with empty user and group names, every mtime is the one given (from
``SOURCE_DATE_EPOCH``), modes are explicit, and a PAX header is written only
for what ustar cannot hold (long or non-ASCII names, huge files).  The gzip
header is written by hand because ``gzip.compress`` changed its OS byte
between Python 3.12 and 3.13.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import attrs
import zstandard

from ukbuild.errors import EmitError

from .model import Blob, MediaType, sha256_digest, str_dict

Compression = Literal["gzip", "zstd", "none"]
COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd", "none")

GZIP_LEVEL = 9
#: Deflate block size of gzip layers; part of the format (changing it changes layer bytes).
GZIP_BLOCK = 1 << 20
_WINDOW = 32 * 1024
ZSTD_LEVEL = 12

_LAYER_MEDIA_TYPES: dict[str, str] = {
    "gzip": MediaType.LAYER_GZIP,
    "zstd": MediaType.LAYER_ZSTD,
    "none": MediaType.LAYER,
}

DIR_MODE = 0o755
FILE_MODE = 0o644
EXEC_MODE = 0o755


def normalise_path(path: str) -> str:
    """Return the clean relative form of a member path, or raise ``EmitError``."""
    stripped = path.lstrip("/")
    clean = posixpath.normpath(stripped) if stripped else ""
    if (
        not stripped
        or clean in (".", "..")
        or clean != stripped.rstrip("/")
        or clean.startswith("../")
    ):
        raise EmitError(
            f"layer entry {path!r} is not a clean path inside the image",
            hint="use paths like 'unikraft/bin/kernel' without '.', '..' or doubled slashes",
            reason="bad-layer-path",
        )
    if "\x00" in clean:
        raise EmitError(f"layer entry {path!r} contains a NUL byte", reason="bad-layer-path")
    return clean


@attrs.frozen
class TarEntry:
    """One member of a layer: a file (``data``), a directory or a symlink.

    ``path`` is relative and POSIX (``unikraft/bin/kernel``); a leading ``/``
    is accepted and dropped.
    """

    path: str = attrs.field(converter=normalise_path)
    data: bytes | None = None
    mode: int = FILE_MODE
    linkname: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.data is None and self.linkname is None

    @classmethod
    def file(cls, path: str, data: bytes, mode: int = FILE_MODE) -> TarEntry:
        return cls(path, data=bytes(data), mode=mode)

    @classmethod
    def directory(cls, path: str, mode: int = DIR_MODE) -> TarEntry:
        return cls(path, mode=mode)

    @classmethod
    def symlink(cls, path: str, target: str) -> TarEntry:
        return cls(path, mode=0o777, linkname=target)


@attrs.frozen
class Layer:
    """A layer blob plus what a config and a manifest need to know about it."""

    blob: Blob
    diff_id: str
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=str_dict)

    @property
    def compression(self) -> Compression:
        for name, media_type in _LAYER_MEDIA_TYPES.items():
            if media_type == self.blob.media_type:
                return name  # type: ignore[return-value]
        raise AssertionError(self.blob.media_type)


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, ``None`` when unset or empty."""
    env = os.environ if environ is None else environ
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise EmitError(
            f"SOURCE_DATE_EPOCH={raw!r} is not a non-negative integer",
            hint="set it to seconds since 1970, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
            reason="bad-source-date-epoch",
        )
    return int(raw)


def entries_from_tree(root: Path, prefix: str = "") -> list[TarEntry]:
    """Read a staged tree into entries, modes normalised.

    Modes are reduced to 0755/0644 (by the owner's execute bit) so that the
    umask of whoever staged the tree does not reach the digest.
    """
    root = Path(root)
    if not root.is_dir():
        raise EmitError(f"staged tree {root} is not a directory", reason="bad-layer-source")
    entries: list[TarEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = Path(dirpath, name)
            rel = posixpath.join(prefix, full.relative_to(root).as_posix())
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                entries.append(TarEntry.symlink(rel, os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(TarEntry.directory(rel))
            elif stat.S_ISREG(st.st_mode):
                mode = EXEC_MODE if st.st_mode & stat.S_IXUSR else FILE_MODE
                entries.append(TarEntry.file(rel, full.read_bytes(), mode))
            else:
                raise EmitError(
                    f"staged tree entry {full} is not a file, directory or symlink",
                    hint="device nodes, FIFOs and sockets cannot go into an image layer",
                    reason="bad-layer-source",
                )
    return entries


def tar_bytes(entries: Iterable[TarEntry], *, mtime: int = 0, parents: bool = True) -> bytes:
    """The deterministic tar of ``entries``.

    With ``parents`` every missing parent directory is added (mode 0755), so
    extractors never invent directories with their own umask.
    """
    by_path: dict[str, TarEntry] = {}
    for entry in entries:
        if entry.path in by_path:
            raise EmitError(
                f"layer entry {entry.path!r} is given twice", reason="duplicate-layer-entry"
            )
        by_path[entry.path] = entry
    if parents:
        for path in list(by_path):
            parent = posixpath.dirname(path)
            while parent and parent not in by_path:
                by_path[parent] = TarEntry.directory(parent)
                parent = posixpath.dirname(parent)
    for path in by_path:
        parent = posixpath.dirname(path)
        while parent and parent not in by_path:
            parent = posixpath.dirname(parent)
        if parent and not by_path[parent].is_dir:
            raise EmitError(
                f"layer entry {path!r} lies under {parent!r}, which is not a directory",
                reason="bad-layer-path",
            )

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for path in sorted(by_path):
            entry = by_path[path]
            info = tarfile.TarInfo(path)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = entry.mode & 0o7777
            if entry.linkname is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = entry.linkname
                tar.addfile(info)
            elif entry.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """gzip with mtime 0, no file name and OS byte 255, whatever the Python version.

    The deflate stream is cut into :data:`GZIP_BLOCK` blocks as pigz does:
    each is primed with the 32 KiB before it and ends with a sync flush, so
    the blocks compress in parallel (zlib releases the GIL) and the bytes do
    not depend on the number of threads.
    """
    view = memoryview(data)
    starts = range(0, max(len(data), 1), GZIP_BLOCK)

    def block(start: int) -> bytes:
        window = bytes(view[max(0, start - _WINDOW) : start])
        args = (level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
        compressor = zlib.compressobj(*args, window) if window else zlib.compressobj(*args)
        last = start + GZIP_BLOCK >= len(data)
        return compressor.compress(view[start : start + GZIP_BLOCK]) + compressor.flush(
            zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
        )

    if len(starts) == 1:
        body = block(0)
    else:
        with ThreadPoolExecutor(min(len(starts), os.cpu_count() or 1)) as pool:
            body = b"".join(pool.map(block, starts))
    xfl = 2 if level == 9 else (4 if level == 1 else 0)
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + bytes([xfl, 255])
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def zstd_bytes(data: bytes, level: int = ZSTD_LEVEL) -> bytes:
    """One single-threaded zstd frame that records its content size."""
    compressor = zstandard.ZstdCompressor(
        level=level, write_content_size=True, write_checksum=True, threads=0
    )
    return compressor.compress(data)


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip_bytes(data)
    if compression == "zstd":
        return zstd_bytes(data)
    if compression == "none":
        return data
    raise EmitError(
        f"unknown layer compression {compression!r}",
        hint=f"use one of {', '.join(COMPRESSIONS)}",
        reason="bad-compression",
    )


def make_layer(
    entries: Iterable[TarEntry],
    *,
    compression: Compression = "gzip",
    mtime: int = 0,
    parents: bool = True,
    annotations: Mapping[str, str] | None = None,
) -> Layer:
    """Tar and compress ``entries`` into a layer whose ``diff_id`` is the tar's digest."""
    if compression not in _LAYER_MEDIA_TYPES:
        compress(b"", compression)  # raises the user-facing error
    raw = tar_bytes(entries, mtime=mtime, parents=parents)
    blob = Blob(_LAYER_MEDIA_TYPES[compression], compress(raw, compression))
    return Layer(blob, sha256_digest(raw), annotations or {})


def decompress_layer(blob: Blob) -> bytes:
    """The uncompressed tar of a layer blob (for Docker archives and checks)."""
    if blob.media_type == MediaType.LAYER:
        return blob.data
    if blob.media_type == MediaType.LAYER_GZIP:
        return zlib.decompress(blob.data, 16 + zlib.MAX_WBITS)
    if blob.media_type == MediaType.LAYER_ZSTD:
        return zstandard.ZstdDecompressor().decompress(blob.data)
    raise EmitError(f"blob of type {blob.media_type} is not a layer tar", reason="bad-layer")
