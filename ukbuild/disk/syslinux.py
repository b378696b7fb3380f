"""Debian's syslinux: its files, its installer, and configurations for mboot.c32.

Command lines reach a Multiboot kernel through mboot.c32 as
``<kernel file name> <args>``, and byte for byte otherwise: quotes, commas,
backslashes, ``#``, ``=``, braces and UTF-8 need no quoting or escaping at
all, because neither the config parser nor mboot.c32 interprets them.  What
syslinux 6.04 does change (measured under QEMU; :func:`check_cmdline`
refuses such command lines rather than let them change):

* The APPEND value is split at white space into words and mboot.c32 joins
  the words with single spaces: runs of spaces shrink to one, tabs become
  spaces, leading and trailing spaces vanish.  Newlines end the line.
* A word ``---`` separates Multiboot modules: the rest would be loaded as a
  module file (the boot then hangs when there is no such file).
* ``mboot.c32 `` plus the APPEND value may be at most 2047 bytes; a longer
  line makes the boot hang silently.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from ukbuild.errors import EmitError

#: Where Debian's syslinux-common and isolinux packages put the files; tests
#: monkeypatch this.
SEARCH_DIRS: tuple[Path, ...] = (
    Path("/usr/lib/syslinux/mbr"),
    Path("/usr/lib/syslinux/modules/bios"),
    Path("/usr/lib/ISOLINUX"),
)
PACKAGES: Final = {
    "mbr.bin": "syslinux-common",
    "mboot.c32": "syslinux-common",
    "libcom32.c32": "syslinux-common",
    "ldlinux.c32": "syslinux-common",
    "isolinux.bin": "isolinux",
}
INSTALLER: Final = "syslinux"
#: The kernel's file name next to the configuration; the kernel sees it as
#: the first word of its command line.
KERNEL_NAME: Final = "kernel.elf"
#: The longest APPEND value (bytes): the boot line "mboot.c32 " + APPEND holds 2047.
MAX_APPEND: Final = 2047 - len("mboot.c32 ")


def find_file(name: str) -> Path:
    """The path of one of the files in :data:`PACKAGES`."""
    for directory in SEARCH_DIRS:
        path = directory / name
        if path.is_file():
            return path
    package = PACKAGES[name]
    msg = f"boot loader file {name} not found (looked in {', '.join(map(str, SEARCH_DIRS))})"
    hint = f"install it: apt-get install {package}"
    raise EmitError(msg, hint=hint, reason="bootloader-missing")


def read_file(name: str) -> bytes:
    """The contents of one of the files in :data:`PACKAGES`."""
    return find_file(name).read_bytes()


def config(kernel_name: str, cmdline: str, *, aout: bool) -> str:
    """A syslinux.cfg / isolinux.cfg that boots ``kernel_name`` through mboot.c32 at once.

    The console is COM1 at 115200 baud, as for the kernel itself.

    Raises:
        EmitError: ``reason="bad-cmdline"`` if ``cmdline`` would not reach
            the kernel verbatim.
    """
    check_cmdline(cmdline)
    append = " ".join(filter(None, ["-aout" if aout else "", kernel_name, cmdline]))
    size = len(cmdline.encode())
    room = MAX_APPEND - len(append.encode()) + size
    if size > room:
        msg = f"the kernel command line is {size} bytes; syslinux passes at most {room} here"
        hint = "pass large configuration in a file on the disk instead"
        raise EmitError(msg, hint=hint, reason="bad-cmdline")
    return (
        "SERIAL 0 115200\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "DEFAULT unikernel\n"
        "LABEL unikernel\n"
        "  KERNEL mboot.c32\n"
        f"  APPEND {append}\n"
    )


def check_cmdline(cmdline: str) -> None:
    """Refuse a command line that syslinux and mboot.c32 would not pass on verbatim."""
    problem = None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in cmdline):
        problem = "it contains a control character (tab, newline, ...)"
    elif cmdline != cmdline.strip(" ") or "  " in cmdline:
        problem = "it has leading, trailing or repeated spaces, which syslinux turns into one"
    elif "---" in cmdline.split(" "):
        problem = "it contains the word '---', which mboot.c32 takes as a module separator"
    if problem:
        msg = f"the kernel command line cannot pass through syslinux unchanged: {problem}"
        raise EmitError(msg, detail=cmdline, hint="change the command line", reason="bad-cmdline")


def check_extra_files(extra_files: Iterable[tuple[str, bytes]], reserved: Iterable[str]) -> None:
    """Refuse extra files that would replace the boot loader's own files."""
    taken = {name.lower() for name in reserved}
    for path, _ in extra_files:
        if path.strip("/").lower() in taken:
            msg = f"extra file {path!r} would replace the boot loader's own file of that name"
            raise EmitError(msg, hint="rename it or move it into a directory", reason="file-clash")


def install(image: Path, offset: int, *, epoch: int) -> None:
    """Run ``syslinux --install`` on the FAT file system at byte ``offset`` of ``image``.

    It writes the volume boot record and ldlinux.sys / ldlinux.c32 through
    mtools, with no mount.  The environment is fixed so that the files it
    adds get the same timestamps everywhere.
    """
    installer = shutil.which(INSTALLER)
    if installer is None:
        msg = f"the syslinux installer ({INSTALLER}) is not on PATH"
        raise EmitError(
            msg, hint="install it: apt-get install syslinux", reason="bootloader-missing"
        )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MTOOLS_SKIP_CHECK": "1",
        "SOURCE_DATE_EPOCH": str(epoch),
        "TZ": "UTC",
        "LC_ALL": "C",
    }
    argv = [installer, "--offset", str(offset), "--install", os.fspath(image)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        msg = f"{INSTALLER} --install failed with status {proc.returncode}"
        output = (proc.stdout + proc.stderr).strip()
        detail = "\n".join(filter(None, [output, "command: " + shlex.join(argv)]))
        hint = (
            "check the syslinux and mtools packages (apt-get install --reinstall syslinux mtools)"
        )
        raise EmitError(msg, detail=detail, hint=hint, reason="bootloader-failed")
