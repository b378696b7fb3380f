"""Bootable El Torito ISO images (BIOS) for Multiboot kernels: isolinux + mboot.c32.

xorriso builds the image from a staging directory holding isolinux.bin,
ldlinux.c32, libcom32.c32, mboot.c32, isolinux.cfg, the kernel and any extra
files.  The command line reaches the kernel exactly as on a raw disk (see
:mod:`ukbuild.disk.syslinux`).  Reproducible: every file date is ``epoch``,
modes and owners are fixed, xorriso's startup files are ignored.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from ukbuild.disk import syslinux
from ukbuild.disk.output import DEFAULT_EPOCH, atomic_output
from ukbuild.errors import EmitError
from ukbuild.multiboot import check_multiboot

XORRISO: Final = "xorriso"
_LOADER_FILES: Final = ("isolinux.bin", "ldlinux.c32", "libcom32.c32", "mboot.c32")
_RESERVED_NAMES: Final = (*_LOADER_FILES, "isolinux.cfg", "boot.cat", syslinux.KERNEL_NAME)
_VOLUME_ID = re.compile(r"[A-Z0-9_]{1,32}")


def _stage(root: Path, files: Iterable[tuple[str, bytes]]) -> None:
    for path, data in files:
        parts = path.strip("/").split("/")
        if any(part in ("", ".", "..") for part in parts):
            msg = f"{path!r}: not a clean relative path for a file on the ISO"
            raise EmitError(msg, reason="bad-file-name")
        dest = root.joinpath(*parts)
        if dest.exists():
            raise EmitError(f"{path!r}: given twice", reason="file-clash")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def write_iso(
    out: str | os.PathLike[str],
    kernel: bytes,
    *,
    cmdline: str = "",
    label: str = "UKBOOT",
    extra_files: Iterable[tuple[str, bytes]] = (),
    epoch: int = DEFAULT_EPOCH,
) -> None:
    """Write a BIOS-bootable ISO at ``out`` that boots ``kernel`` with ``cmdline``.

    ``label`` is the ISO volume ID.  ``extra_files`` are (path on the ISO,
    contents) pairs; Rock Ridge keeps their names as given.

    Raises:
        EmitError: as :func:`ukbuild.disk.rawdisk.write_raw_disk`, plus
            ``tool-not-found`` when xorriso is missing.
    """
    if not _VOLUME_ID.fullmatch(label):
        msg = f"ISO volume label {label!r} must be 1-32 upper-case letters, digits or '_'"
        raise EmitError(msg, reason="bad-label")
    info = check_multiboot(kernel, error=EmitError)
    extra_files = tuple(extra_files)
    syslinux.check_extra_files(extra_files, _RESERVED_NAMES)
    cfg = syslinux.config(syslinux.KERNEL_NAME, cmdline, aout=info.loads_by_aout)
    loader = [(name, syslinux.read_file(name)) for name in _LOADER_FILES]
    xorriso = shutil.which(XORRISO)
    if xorriso is None:
        msg = f"{XORRISO} is not on PATH; it is needed to write ISO images"
        raise EmitError(msg, hint="install it: apt-get install xorriso", reason="tool-not-found")
    with tempfile.TemporaryDirectory(prefix="ukbuild-iso-") as tmpdir:
        stage = Path(tmpdir) / "root"
        stage.mkdir()
        files = [*loader, ("isolinux.cfg", cfg.encode()), (syslinux.KERNEL_NAME, kernel)]
        _stage(stage, [*files, *extra_files])
        for dirpath, _, filenames in os.walk(stage):
            for name in [*filenames, "."]:
                os.utime(Path(dirpath, name), (epoch, epoch))
        with atomic_output(out) as tmp:
            _xorriso(xorriso, stage, tmp, label=label, epoch=epoch)


def _xorriso(xorriso: str, stage: Path, image: Path, *, label: str, epoch: int) -> None:
    argv = [
        xorriso, "-no_rc", "-as", "mkisofs",
        "-o", os.fspath(image),
        "-V", label,
        "-R", "-uid", "0", "-gid", "0", "-file-mode", "0444", "-dir-mode", "0555",
        "-b", "isolinux.bin", "-c", "boot.cat",
        "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
        os.fspath(stage),
    ]  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.fspath(stage.parent),  # no startup files from the real home
        "SOURCE_DATE_EPOCH": str(epoch),
        "TZ": "UTC",
        "LC_ALL": "C",
    }
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        msg = f"{XORRISO} failed with status {proc.returncode} while writing the ISO"
        detail = "\n".join(filter(None, [proc.stderr.strip(), "command: " + shlex.join(argv)]))
        hint = "read xorriso's messages above; a full disk is the usual cause"
        raise EmitError(msg, detail=detail, hint=hint, reason="tool-failed")
