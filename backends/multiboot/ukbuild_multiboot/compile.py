"""Command lines that build a Multiboot kernel from the runtime and an application.

Data only: nothing here runs a process.  The build engine runs each argv as a
cached action, so every argv is fully determined by its arguments (no
environment lookups, no absolute paths other than the ones passed in).

Only the host ``gcc`` and GNU ``ld`` are needed, not gcc-multilib: the code
is freestanding, includes no system header, and links against nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal

import attrs

Variant = Literal["i386", "x86_64"]

VARIANTS: Final[tuple[Variant, ...]] = ("i386", "x86_64")
KERNEL_DIR: Final = Path(__file__).resolve().parent / "kernel"

_CFLAGS: Final = (
    "-std=gnu11",
    "-O2",
    "-Wall",
    "-Wextra",
    "-ffreestanding",
    "-nostdinc",
    "-nostdlib",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-mgeneral-regs-only",
)
_ARCH_CFLAGS: Final[dict[str, tuple[str, ...]]] = {
    "i386": ("-m32", "-march=i686"),
    "x86_64": ("-m64", "-mno-red-zone", "-mcmodel=small"),
}
_LD_EMULATION: Final[dict[str, str]] = {"i386": "elf_i386", "x86_64": "elf_x86_64"}
_LDFLAGS: Final = (
    "-nostdlib",
    "--build-id=none",
    "-z",
    "max-page-size=0x1000",  # keeps the header in the first 8 KiB of the file
    "-z",
    "noexecstack",
    "--no-warn-rwx-segments",  # one RWX segment is what the a.out kludge needs
)

StrPath = str | os.PathLike[str]


@attrs.frozen
class KernelCommands:
    """The argvs that build one kernel: one compile per source, then one link.

    ``objects[i]`` is the output of ``compile[i]`` and an input of ``link``.
    """

    compile: tuple[tuple[str, ...], ...]
    objects: tuple[str, ...]
    link: tuple[str, ...]
    output: str


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        msg = f"unknown Multiboot kernel variant {variant!r}; expected one of {', '.join(VARIANTS)}"
        raise ValueError(msg)


def runtime_sources(variant: Variant, runtime_dir: StrPath = KERNEL_DIR) -> tuple[Path, ...]:
    """The runtime's own sources for ``variant``, boot code first.

    ``runtime_dir`` is where the runtime is found: the installed directory
    by default, or where a build action stages it.
    """
    _check_variant(variant)
    root = Path(runtime_dir)
    return (root / f"boot-{variant}.S", root / "kernel.c", root / "serial.c")


def linker_script(variant: Variant, runtime_dir: StrPath = KERNEL_DIR) -> Path:
    """The linker script for ``variant`` (an input of the link action)."""
    _check_variant(variant)
    return Path(runtime_dir) / f"link-{variant}.ld"


def compile_argv(
    variant: Variant,
    source: StrPath,
    obj: StrPath,
    *,
    cc: str = "gcc",
    include_dirs: tuple[StrPath, ...] = (),
    runtime_dir: StrPath = KERNEL_DIR,
) -> tuple[str, ...]:
    """The argv compiling one C or assembly (``.S``) source to ``obj``.

    The runtime's directory is always on the include path, so applications
    ``#include "uk.h"``.  Paths are passed through as given; the caller picks
    relative or absolute ones.
    """
    _check_variant(variant)
    includes = [f"-I{os.fspath(d)}" for d in (runtime_dir, *include_dirs)]
    return (
        cc,
        *_CFLAGS,
        *_ARCH_CFLAGS[variant],
        *includes,
        "-c",
        os.fspath(source),
        "-o",
        os.fspath(obj),
    )


def link_argv(
    variant: Variant,
    objects: tuple[StrPath, ...],
    output: StrPath,
    *,
    ld: str = "ld",
    runtime_dir: StrPath = KERNEL_DIR,
) -> tuple[str, ...]:
    """The argv linking ``objects`` into the kernel ``output``."""
    _check_variant(variant)
    return (
        ld,
        "-m",
        _LD_EMULATION[variant],
        *_LDFLAGS,
        "-T",
        os.fspath(linker_script(variant, runtime_dir)),
        "-o",
        os.fspath(output),
        *(os.fspath(o) for o in objects),
    )


def kernel_commands(
    variant: Variant,
    app_sources: tuple[StrPath, ...],
    objdir: StrPath,
    output: StrPath,
    *,
    cc: str = "gcc",
    ld: str = "ld",
    include_dirs: tuple[StrPath, ...] = (),
    runtime_dir: StrPath = KERNEL_DIR,
) -> KernelCommands:
    """Every argv that builds ``output`` from the runtime plus ``app_sources``.

    Objects go to ``objdir`` and are named ``<index>-<stem>.o`` so that two
    sources with the same file name cannot collide.
    """
    sources = (*runtime_sources(variant, runtime_dir), *app_sources)
    objects = tuple(
        os.fspath(Path(objdir) / f"{i}-{Path(src).stem}.o") for i, src in enumerate(sources)
    )
    compiles = tuple(
        compile_argv(variant, src, obj, cc=cc, include_dirs=include_dirs, runtime_dir=runtime_dir)
        for src, obj in zip(sources, objects, strict=True)
    )
    return KernelCommands(
        compile=compiles,
        objects=objects,
        link=link_argv(variant, objects, output, ld=ld, runtime_dir=runtime_dir),
        output=os.fspath(output),
    )
