"""Data images: a :class:`~ukbuild.disk.tree.DataTree` as an ext2, ISO9660 (Rock Ridge),
FAT or NetBSD FFS file system, for unikernels to mount (Rumprun ``blk``, Solo5 block
devices, urunc block images).

Reproducible, without mounts or privileges:

* **ext2**: ``mke2fs -d`` from a staged tree (it adds entries in sorted
  order) with a fixed configuration (``MKE2FS_CONFIG``: 1 KiB blocks,
  128-byte inodes, no reserved blocks), a UUID and hash seed derived from the
  image name, ``E2FSPROGS_FAKE_TIME``; then one ``debugfs -w`` script sets
  each inode's owner, mode and times (``mke2fs -d`` copies the staged
  files' owners and their ctime, which is the clock).
* **iso9660**: ``xorriso`` in native mode, Rock Ridge on, Joliet off;
  owners and modes set per path in the ISO tree; dates from
  ``SOURCE_DATE_EPOCH`` (xorriso then pins every file date and the volume UUID).
* **fat**: the pure-Python FAT16 writer of :mod:`ukbuild.disk.fat` over the
  whole image (no partition table); 8.3 names only, and no owners, modes or
  symlinks, which FAT cannot store.
* **ffs**: NetBSD ``makefs -t ffs`` (FFSv1, little-endian) with an mtree
  specification giving every entry's owner, mode and time.  makefs copies
  four in-memory pointers (heap addresses) into each superblock; they are
  zeroed, as the kernel fills them in at mount time.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import struct
import subprocess
import tempfile
import uuid
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from ukbuild.disk.fat import SECTOR, FatVolume
from ukbuild.disk.output import atomic_output
from ukbuild.disk.tree import DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, ROOT, DataTree, Entry
from ukbuild.errors import EmitError

#: Format → the host tools it runs (its toolchain).
TOOLS: Final[Mapping[str, tuple[str, ...]]] = {
    "ext2": ("mke2fs", "debugfs"),
    "iso9660": ("xorriso",),
    "fat": (),
    "ffs": ("makefs",),
}
PACKAGES: Final = {"mke2fs": "e2fsprogs", "debugfs": "e2fsprogs", "xorriso": "xorriso", "makefs": "makefs"}
#: Formats whose size is chosen (``size_mib``); an ISO is as large as its content.
SIZED: Final = ("ext2", "fat", "ffs")
LABELLED: Final = ("ext2", "iso9660", "fat")
MIN_SIZE_MIB: Final = {"ext2": 2, "fat": 4, "ffs": 4}
DEFAULT_LABEL: Final = "DATA"
#: 128-byte ext2 inodes and FFSv1 store 32-bit times.
MAX_EPOCH: Final = 2**31 - 1
_NAMESPACE: Final = uuid.UUID("0b8e4f5c-1d2a-5e6f-8a9b-756b62756964")
_ISO_VOLUME_ID = re.compile(r"[A-Z0-9_]{1,32}")
_MKE2FS_CONFIG: Final = """\
[defaults]
\tbase_features = sparse_super,large_file,filetype,dir_index,ext_attr
\tblocksize = 1024
\tinode_size = 128
\tinode_ratio = 4096
\treserved_ratio = 0
[fs_types]
\tdefault = {
\t}
\text2 = {
\t}
"""
_FFS_MAGIC: Final = 0x011954
_FFS_POINTERS: Final = slice(824, 856)  # fs_ocsp tail .. fs_active: in-memory pointers


def write_data_image(
    out: str | os.PathLike[str],
    fmt: str,
    tree: DataTree,
    *,
    name: str,
    epoch: int,
    size_mib: int | None = None,
    label: str | None = None,
) -> None:
    """Write ``tree`` as a ``fmt`` file system image at ``out`` (all of it, or nothing).

    ``name`` (the image's name) seeds the UUIDs and volume IDs; ``epoch`` is
    every timestamp.  ``size_mib`` None picks a size that fits the content.

    Raises:
        EmitError: the tree cannot be represented in ``fmt`` (names, owners,
            modes, links), the label is invalid, the content does not fit,
            or a tool is missing or fails.
    """
    writers: Mapping[str, Callable[[Path, DataTree, str, int, int, str], None]] = {
        "ext2": _ext2, "iso9660": _iso9660, "fat": _fat, "ffs": _ffs,
    }  # fmt: skip
    if fmt not in TOOLS:
        raise EmitError(f"unknown data image format {fmt!r}", hint="one of: " + ", ".join(TOOLS), reason="bad-format")
    if not 0 <= epoch <= MAX_EPOCH:
        msg = f"timestamp {epoch} (SOURCE_DATE_EPOCH) is beyond 2038, which {fmt} images here cannot store"
        raise EmitError(msg, hint="use an earlier SOURCE_DATE_EPOCH", reason="bad-epoch")
    if label is not None and fmt not in LABELLED:
        raise EmitError(f"a {fmt} image has no volume label", hint="drop the label", reason="bad-label")
    if size_mib is not None and fmt not in SIZED:
        raise EmitError(f"a {fmt} image is as large as its content", hint="drop the size", reason="bad-disk-size")
    label = DEFAULT_LABEL if label is None else label
    check_label(fmt, label)
    for tool in TOOLS[fmt]:
        _tool(tool)
    if fmt not in SIZED:
        size_mib = 0
    elif size_mib is None:
        size_mib = _auto_size_mib(tree, MIN_SIZE_MIB[fmt])
    elif size_mib < MIN_SIZE_MIB[fmt]:
        msg = f"a {fmt} image of {size_mib} MiB is too small (at least {MIN_SIZE_MIB[fmt]} MiB)"
        raise EmitError(msg, hint=f"size_mib = {MIN_SIZE_MIB[fmt]} or more", reason="bad-disk-size")
    with atomic_output(out) as tmp:
        writers[fmt](tmp, tree, name, epoch, size_mib, label)


def check_label(fmt: str, label: str) -> None:
    """Refuse a label ``fmt`` cannot store."""
    problem = None
    if fmt == "ext2" and not (0 < len(label.encode()) <= 16 and label.isprintable()):
        problem = "an ext2 label is 1 to 16 printable bytes"
    elif fmt == "iso9660" and not _ISO_VOLUME_ID.fullmatch(label):
        problem = "an ISO volume ID is 1 to 32 upper-case letters, digits or '_'"
    elif fmt == "fat" and not re.fullmatch(r"[A-Z0-9 _\-]{1,11}", label):
        problem = "a FAT label is 1 to 11 upper-case letters, digits, spaces, '_' or '-'"
    if problem:
        raise EmitError(f"label {label!r}: {problem}", hint="change the label", reason="bad-label")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not on PATH; it writes this image format"
        raise EmitError(msg, hint=f"install it: apt-get install {PACKAGES[name]}", reason="tool-not-found")
    return path


def _auto_size_mib(tree: DataTree, minimum: int) -> int:
    """Room for the content in 4 KiB units plus metadata, with a quarter to spare."""
    payload = sum(4096 * math.ceil(len(e.data) / 4096) + 4096 for e in tree.entries)
    return max(minimum, math.ceil((payload * 1.25 + (1 << 20)) / (1 << 20)))


def _run(argv: list[str], env: Mapping[str, str], what: str, hint: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C", **env}
    proc = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        detail = "\n".join(filter(None, [output[-4000:], "command: " + shlex.join(argv)]))
        raise EmitError(f"{what} failed with status {proc.returncode}", detail=detail, hint=hint, reason="tool-failed")
    return proc


def _derived_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}\0{name}"))


# --- ext2 -------------------------------------------------------------------


def _debugfs_quote(path: str) -> str:
    if "\n" in path:
        raise EmitError(f"{path!r}: a newline in a name cannot pass through debugfs", reason="bad-file-name")
    return '"' + path.replace('"', '""') + '"'


def _ext2(image: Path, tree: DataTree, name: str, epoch: int, size_mib: int, label: str) -> None:
    mke2fs, debugfs = _tool("mke2fs"), _tool("debugfs")
    with tempfile.TemporaryDirectory(prefix="ukbuild-ext2-") as tmpdir:
        stage, config, script = Path(tmpdir, "root"), Path(tmpdir, "mke2fs.conf"), Path(tmpdir, "debugfs.cmd")
        stage.mkdir()
        tree.stage(stage, epoch)
        config.write_text(_MKE2FS_CONFIG)
        fs_uuid, seed = _derived_uuid("ext2", name), _derived_uuid("ext2-hash-seed", name)
        env = {"MKE2FS_CONFIG": os.fspath(config), "E2FSPROGS_FAKE_TIME": str(epoch)}
        _run([mke2fs, "-q", "-F", "-t", "ext2", "-T", "default", "-U", fs_uuid, "-L", label,
              "-E", f"hash_seed={seed},root_owner=0:0", "-d", os.fspath(stage), os.fspath(image), f"{size_mib}M"],
             env, "mke2fs", "the content may not fit: raise size_mib")  # fmt: skip
        lines = []
        for entry in tree.entries:
            path = _debugfs_quote("/" + entry.path)
            lines += [f"sif {path} uid {entry.owner.uid}", f"sif {path} gid {entry.owner.gid}"]
            if entry.kind != "link":
                lines.append(f"sif {path} mode 0{entry.st_mode:o}")
            lines += [f"sif {path} {field} @{epoch}" for field in ("atime", "mtime", "ctime")]
        script.write_text("".join(line + "\n" for line in lines))
        proc = _run([debugfs, "-w", "-f", os.fspath(script), os.fspath(image)], env, "debugfs",
                    "check the e2fsprogs package")  # fmt: skip
        errors = [line for line in proc.stderr.splitlines() if line and not line.startswith("debugfs ")]
        if errors:
            detail = "\n".join(errors[:20])
            raise EmitError("debugfs could not set owners, modes or times", detail=detail, reason="tool-failed")


# --- ISO9660 ----------------------------------------------------------------


def _iso9660(image: Path, tree: DataTree, name: str, epoch: int, size_mib: int, label: str) -> None:
    del name, size_mib  # xorriso derives the volume UUID from SOURCE_DATE_EPOCH
    xorriso = _tool("xorriso")
    for entry in tree.entries:
        if len(entry.name.encode()) > 255:
            raise EmitError(f"{entry.path!r}: Rock Ridge names are at most 255 bytes", reason="bad-file-name")
    with tempfile.TemporaryDirectory(prefix="ukbuild-iso9660-") as tmpdir:
        stage = Path(tmpdir, "root")
        stage.mkdir()
        tree.stage(stage, epoch)
        argv = [xorriso, "-no_rc", "-report_about", "SORRY", "-abort_on", "FAILURE",
                "-disk_pattern", "off", "-iso_rr_pattern", "off",
                "-outdev", f"stdio:{image}", "-volid", label, "-joliet", "off", "-rockridge", "on",
                "-map", os.fspath(stage), "/"]  # fmt: skip
        groups: dict[tuple[str, str], list[str]] = {}
        for entry in ((Entry("", "dir", DEFAULT_DIR_MODE, ROOT)), *tree.entries):
            path = "/" + entry.path
            groups.setdefault(("-chown", str(entry.owner.uid)), []).append(path)
            groups.setdefault(("-chgrp", str(entry.owner.gid)), []).append(path)
            if entry.kind != "link":
                groups.setdefault(("-chmod", f"0{entry.mode:o}"), []).append(path)
        for (command, value), paths in sorted(groups.items()):
            argv += [command, value, *paths, "--"]
        argv += ["-commit", "-end"]
        env = {"HOME": tmpdir, "SOURCE_DATE_EPOCH": str(epoch)}
        _run(argv, env, "xorriso", "read xorriso's messages above; a full disk is the usual cause")


# --- FAT --------------------------------------------------------------------


def _fat(image: Path, tree: DataTree, name: str, epoch: int, size_mib: int, label: str) -> None:
    files: list[tuple[str, bytes]] = []
    for entry in tree.entries:
        problem = None
        if entry.kind == "link":
            problem = "it is a symlink, which FAT cannot store"
        elif entry.owner != ROOT:
            problem = f"its owner {entry.owner} is not 0:0, and FAT stores no owners"
        elif entry.mode != (DEFAULT_DIR_MODE if entry.kind == "dir" else DEFAULT_FILE_MODE):
            problem = f"its mode {entry.mode:04o} is not the default, and FAT stores no modes"
        if problem:
            raise EmitError(f"{entry.path!r}: {problem}", hint="use ext2, iso9660 or ffs, or drop it",
                            reason="not-representable")  # fmt: skip
        files.append((entry.path + "/" if entry.kind == "dir" else entry.path, entry.data))
    total_sectors = size_mib * (1 << 20) // SECTOR
    volume = FatVolume(total_sectors, files, zlib.crc32(f"fat\0{name}".encode()), label, epoch)
    with image.open("r+b") as f:
        f.truncate(total_sectors * SECTOR)
        volume.write(f, 0)


# --- FFS --------------------------------------------------------------------


def _mtree_escape(text: str) -> str:
    safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+,@%:")
    return "".join(chr(b) if b in safe else f"\\{b:03o}" for b in text.encode())


def _ffs(image: Path, tree: DataTree, name: str, epoch: int, size_mib: int, label: str) -> None:
    del name, label  # FFSv1 has neither a UUID nor a label; its fs_id comes from the time
    makefs = _tool("makefs")
    with tempfile.TemporaryDirectory(prefix="ukbuild-ffs-") as tmpdir:
        stage, spec = Path(tmpdir, "root"), Path(tmpdir, "spec")
        stage.mkdir()
        tree.stage(stage, epoch)
        lines = [f". type=dir uid=0 gid=0 mode=0755 time={epoch}.0"]
        for entry in tree.entries:
            line = (f"./{_mtree_escape(entry.path)} type={entry.kind} uid={entry.owner.uid} gid={entry.owner.gid} "
                    f"mode=0{entry.mode:o} time={epoch}.0")  # fmt: skip
            if entry.kind == "link":
                line += f" link={_mtree_escape(entry.target)}"
            lines.append(line)
        spec.write_text("".join(line + "\n" for line in lines))
        image.unlink()  # makefs creates its output itself
        _run([makefs, "-t", "ffs", "-B", "le", "-o", "version=1", "-s", f"{size_mib}m", "-T", str(epoch),
              "-F", os.fspath(spec), "-x", os.fspath(image), os.fspath(stage)],
             {}, "makefs", "the content may not fit: raise size_mib")  # fmt: skip
    _zero_ffs_pointers(image)


def _zero_ffs_pointers(image: Path) -> None:
    """Zero the in-memory pointers makefs leaves in the superblock and its copies."""
    with image.open("r+b") as f:
        primary = bytearray(f.read(8192 + 2048)[8192:])
        (magic,) = struct.unpack_from("<i", primary, 1372)  # fs_magic
        if magic != _FFS_MAGIC:
            raise EmitError("makefs wrote no FFSv1 superblock at 8 KiB", reason="tool-failed")
        sblkno, cgoffset, cgmask, ncg, fsize, fpg = (
            struct.unpack_from("<i", primary, offset)[0] for offset in (8, 24, 28, 44, 52, 188)
        )
        copies = [8192] + [(c * fpg + cgoffset * (c & ~cgmask) + sblkno) * fsize for c in range(ncg)]
        for offset in copies:
            f.seek(offset + _FFS_POINTERS.start)
            f.write(bytes(_FFS_POINTERS.stop - _FFS_POINTERS.start))
