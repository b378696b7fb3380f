"""GRUB 2 (i386-pc) for raw disks: ``boot.img`` in the MBR, a ``core.img`` in the gap
before the partition at 1 MiB, the kernel on the FAT partition.

``grub-mkimage`` builds the core image with an embedded configuration that
sets up the serial console (terminfo ``dumb``: no escape sequences before
the kernel's own output) and runs ``multiboot (hd0,msdos1)/kernel.elf
kernel.elf ARGS`` then ``boot``; nothing is read from the FAT but the kernel
(no ``grub.cfg``, no ``normal`` module).  The core image holds no timestamp,
so the same configuration gives the same bytes.

How GRUB 2.06 passes the command line (oci-and-images.md §7.5, and
``tests/disk/test_grub.py`` boots these cases):

* The configuration line is split into words by GRUB's parser: runs of
  spaces and tabs separate words; ``'…'`` and ``"…"`` quote, ``\\`` escapes,
  ``$NAME`` and ``${NAME}`` are replaced by variables (empty when unset).
* ``multiboot`` hands the kernel every word after the file name, joined by
  single spaces, re-quoted: a word holding a space is wrapped in ``"…"``, and
  each ``\\``, ``'`` and ``"`` gets a ``\\`` in front.  So JSON
  ``{"a":1}`` arrives as ``{\\"a\\":1}`` — Rumprun cannot parse it.
* Unlike ``mboot.c32`` it does not put the kernel's file name first; ukbuild
  passes ``kernel.elf`` as the first word so that the kernel sees
  ``kernel.elf ARGS`` with either loader (Solo5 skips that first word).

A command line therefore reaches the kernel byte for byte when its words
are separated by single spaces and hold none of ``\\ ' " $`` nor control
characters; :func:`check_cmdline` refuses every other line instead of
letting GRUB change it.  Everything else — ``, = # ; { } ( ) < > | &``, UTF-8 —
passes unchanged, up to at least 2 KiB.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from ukbuild.errors import EmitError

MODULE_DIR: Final = Path("/usr/lib/grub/i386-pc")
MKIMAGE: Final = "grub-mkimage"
#: The modules of the core image; grub-mkimage adds their dependencies (boot, …).
MODULES: Final = ("biosdisk", "part_msdos", "fat", "multiboot", "serial", "terminal")
#: The kernel's path on the partition, and the first word of its command line.
KERNEL_NAME: Final = "kernel.elf"
#: GRUB re-quotes or interprets these characters.
SPECIAL: Final = "\\'\"$"


def check_cmdline(cmdline: str) -> None:
    """Refuse a command line that GRUB's parser and ``multiboot`` would not pass verbatim."""
    problem = None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in cmdline):
        problem = "it contains a control character (tab, newline, ...)"
    elif cmdline != cmdline.strip(" ") or "  " in cmdline:
        problem = "it has leading, trailing or repeated spaces, which GRUB turns into one"
    elif found := sorted({c for c in cmdline if c in SPECIAL}):
        shown = " ".join(found)
        problem = f"it contains {shown}, which GRUB interprets or re-quotes with backslashes"
    if problem:
        msg = f"the kernel command line cannot pass through GRUB unchanged: {problem}"
        hint = 'use bootloader = "syslinux" (it passes any such line verbatim), or change the command line'
        raise EmitError(msg, detail=cmdline, hint=hint, reason="bad-cmdline")


def config(cmdline: str) -> str:
    """The configuration embedded in the core image."""
    check_cmdline(cmdline)
    args = " ".join(filter(None, [KERNEL_NAME, cmdline]))
    return (
        "serial --unit=0 --speed=115200\n"
        "terminfo serial dumb\n"
        "terminal_input serial\n"
        "terminal_output serial\n"
        f"multiboot (hd0,msdos1)/{KERNEL_NAME} {args}\n"
        "boot\n"
    )


def boot_image() -> bytes:
    """The MBR boot code of GRUB (``boot.img``)."""
    return _module_file("boot.img")


def _module_file(name: str) -> bytes:
    path = MODULE_DIR / name
    if not path.is_file():
        msg = f"GRUB file {path} not found"
        raise EmitError(msg, hint="install it: apt-get install grub-pc-bin", reason="bootloader-missing")
    return path.read_bytes()


def core_image(cmdline: str, max_bytes: int) -> bytes:
    """``grub-mkimage``'s core image booting ``kernel.elf`` with ``cmdline``, at most ``max_bytes``."""
    cfg = config(cmdline)
    _module_file("boot.img")
    mkimage = shutil.which(MKIMAGE)
    if mkimage is None:
        msg = f"{MKIMAGE} is not on PATH; it builds GRUB's core image"
        raise EmitError(msg, hint="install it: apt-get install grub-common", reason="bootloader-missing")
    with tempfile.TemporaryDirectory(prefix="ukbuild-grub-") as tmpdir:
        early, core = Path(tmpdir, "early.cfg"), Path(tmpdir, "core.img")
        early.write_text(cfg)
        argv = [mkimage, "-O", "i386-pc", "-d", os.fspath(MODULE_DIR), "-p", "(hd0,msdos1)/boot/grub",
                "-c", os.fspath(early), "-o", os.fspath(core), *MODULES]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C"}
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            detail = "\n".join(filter(None, [proc.stderr.strip(), "command: " + shlex.join(argv)]))
            raise EmitError(f"{MKIMAGE} failed with status {proc.returncode}", detail=detail,
                            hint="check the grub-pc-bin and grub-common packages", reason="bootloader-failed")
        data = core.read_bytes()
    if len(data) > max_bytes:
        msg = f"GRUB's core image is {len(data)} bytes; the gap before the partition holds {max_bytes}"
        raise EmitError(msg, hint="shorten the command line", reason="bootloader-failed")
    return data
