"""Lay out the fake Rumprun toolchain under a prefix (see README.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

TUPLE = "x86_64-rumprun-netbsd"
BAKE_VERSION = "20160209"
NETBSD_VERSION = "7.99.34"

_HERE = Path(__file__).resolve().parent
_SRC = _HERE / "src"
_REPO = _HERE.parents[2]
#: The ukbuild Multiboot runtime that the fake guest is linked with.
DEFAULT_RUNTIME_DIR = _REPO / "backends" / "multiboot" / "ukbuild_multiboot" / "kernel"

_BINUTILS = ("ar", "as", "ld", "nm", "objcopy", "objdump", "ranlib", "readelf", "size", "strings", "strip")
_LIBEXEC = "libexec/rumprun-x86_64-hw"
_FREESTANDING = ("-m64", "-mno-red-zone", "-fno-pic", "-ffreestanding", "-fno-stack-protector")
# Placeholder bulk (a non-alloc, strippable section) so that baked images have
# the recorded unstripped sizes: ~17.5 MB for hw_virtio, ~21.7 MB for hw_generic.
_RUMP_BASE_PAD = 9_200_000
_COMPONENT_PAD = 323_600


@dataclass(frozen=True)
class FakeRumprun:
    """An installed fake Rumprun toolchain.

    ``version`` strings are what the recorded tools report; ``env()`` gives an
    environment with ``bin/`` first on PATH and the bake banner silenced.
    """

    prefix: Path
    tuple: str = TUPLE
    gcc_version: str = ""
    gxx_version: str = ""
    bake_version: str = BAKE_VERSION
    netbsd_version: str = NETBSD_VERSION
    #: "freestanding" (the tiny libc of src/libc) or "host" (see install_fake_rumprun).
    libc: str = "freestanding"

    @property
    def bin_dir(self) -> Path:
        return self.prefix / "bin"

    @property
    def sysroot(self) -> Path:
        return self.prefix / "rumprun-x86_64"

    @property
    def cc(self) -> Path:
        return self.tool("gcc")

    @property
    def cxx(self) -> Path:
        return self.tool("g++")

    @property
    def bake(self) -> Path:
        return self.bin_dir / "rumprun-bake"

    @property
    def launcher(self) -> Path:
        return self.bin_dir / "rumprun"

    @property
    def invocations(self) -> Path:
        """The host-libc install's record of compiler calls: one ``TOOL ARGS`` line each."""
        return self.prefix / "invocations.log"

    @property
    def cmake_toolchain_file(self) -> Path:
        return self.sysroot / "share" / f"{self.tuple}-toolchain.cmake"

    def tool(self, name: str) -> Path:
        """``bin/<tuple>-<name>``, e.g. ``tool("objcopy")``."""
        return self.bin_dir / f"{self.tuple}-{name}"

    def env(self, base: Mapping[str, str] | None = None, *, quiet: bool = True) -> dict[str, str]:
        """A copy of ``base`` (default ``os.environ``) with the toolchain on PATH."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        if quiet:
            env["RUMPRUN_WARNING_STFU"] = "please"
        return env


def install_fake_rumprun(prefix: Path, *, runtime_dir: Path = DEFAULT_RUNTIME_DIR, libc: str = "freestanding") -> FakeRumprun:
    """Install the fake toolchain at ``prefix`` (absolute paths are baked in).

    ``runtime_dir`` holds the ukbuild Multiboot runtime sources (``uk.h``,
    ``boot-x86_64.S``, ``kernel.c``, ``serial.c``) that baked images boot with.

    ``libc="host"`` gives a sysroot made of the host's C library instead of
    the tiny freestanding one, so real packages (nginx, PHP, MariaDB) configure
    and build through the unchanged wrappers: ``SYSROOT/usr/include`` and
    ``SYSROOT/usr/lib/<multiarch>`` hold links to the files of the Debian
    packages libc6-dev, linux-libc-dev and libstdc++-N-dev only (nothing else
    the host has installed is visible), the specs add ``-D__RUMPRUN__`` but no
    ``-nostdinc``/``__NetBSD__`` (the headers are glibc's), and ``libc++.a`` is
    the host's libstdc++.  Command names, arguments and the ferment/stub-link
    behaviour are those of the default install; baked kernels link but do not
    run such programs.
    """
    if libc not in ("freestanding", "host"):
        raise ValueError(f"libc must be 'freestanding' or 'host', not {libc!r}")
    prefix = Path(prefix).resolve()
    for sub in ("bin", _LIBEXEC, "etc", "rumprun-x86_64/lib/rumprun-hw", "rumprun-x86_64/share"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    # The host-libc install records every compiler call (recipe tests assert from it).
    subst = {"@PREFIX@": str(prefix), "@RECORD@": str(prefix / "invocations.log") if libc == "host" else ""}
    _install_scripts(prefix, subst, host_libc=libc == "host")
    shutil.copytree(_SRC / "include", prefix / "rumprun-x86_64/include", dirs_exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fake-rumprun-build.") as tmp:
        build = Path(tmp)
        _build_sysroot_libs(prefix, build)
        _build_guest_runtime(prefix, build, Path(runtime_dir))
        _build_component_libs(prefix, build)
    if libc == "host":
        _host_libc_sysroot(prefix)
    return FakeRumprun(
        prefix=prefix,
        gcc_version=_first_line([str(prefix / "bin" / f"{TUPLE}-gcc"), "--version"]),
        gxx_version=_first_line([str(prefix / "bin" / f"{TUPLE}-g++"), "--version"]),
        libc=libc,
    )


#: Debian packages whose files make up the host-libc sysroot (see install_fake_rumprun).
_HOST_LIBC_PACKAGES = ("libc6-dev", "linux-libc-dev")


def _host_libc_sysroot(prefix: Path) -> None:
    sysroot = prefix / "rumprun-x86_64"
    gcc_major = _host_query("gcc", "-dumpversion")
    packages = (*_HOST_LIBC_PACKAGES, f"libstdc++-{gcc_major.split('.')[0]}-dev")
    listed = subprocess.run(["dpkg", "-L", *packages], capture_output=True, text=True, check=False).stdout.split()
    for path in listed:
        source = Path(path)
        keep = path.startswith("/usr/include/") or (
            path.startswith("/usr/lib/") and path.endswith((".a", ".o")) and "/gcc/" not in path
        )
        if not keep or source.is_dir() or not source.exists():
            continue
        link = sysroot / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(source)
    lib = sysroot / "lib"
    # What static glibc needs of the start files in a stub link (which has no crt1.o).
    stubs = lib / "hostlibcstubs.s"
    stubs.write_text('\t.section .note.GNU-stack,"",@progbits\n\t.data\n\t.globl _DYNAMIC\n\t.hidden _DYNAMIC\n'
                     "_DYNAMIC:\n\t.quad 0\n")
    _run([_host("as"), "-o", str(lib / "hostlibcstubs.o"), str(stubs)])
    # ... and of the default linker script, in a bake (hw.ldscript defines none of these):
    # the kernel links; it is not meant to run such programs.
    symbols = ("__preinit_array_start", "__preinit_array_end", "__init_array_start", "__init_array_end",
               "__fini_array_start", "__fini_array_end", "__ehdr_start")
    stubs.write_text('\t.section .note.GNU-stack,"",@progbits\n\t.data\n'
                     + "".join(f"\t.globl {n}\n\t.hidden {n}\n{n}:\n" for n in symbols) + "\t.quad 0\n")
    _run([_host("as"), "-o", str(lib / "rumprun-hw" / "hostbakestubs.o"), str(stubs)])
    stubs.unlink()
    for name in ("libc.a", "libpthread.a", "libm.a"):  # the freestanding ones would win on -L
        (lib / name).unlink(missing_ok=True)
    (lib / "libc++.a").unlink(missing_ok=True)
    libstdcxx = _host_query("g++", "-print-file-name=libstdc++.a")
    (lib / "libc++.a").symlink_to(libstdcxx)
    multiarch = _host_query("gcc", "-print-multiarch")
    for name in ("libc.a", "libpthread.a", "libm.a"):
        link = lib / "rumprun-hw" / name
        link.unlink(missing_ok=True)
        link.symlink_to(sysroot / "usr/lib" / multiarch / name)


def _host(tool: str) -> str:
    """The host tool the recorded wrappers exec: /usr/bin/<tool> when present."""
    path = Path("/usr/bin") / tool
    return str(path) if path.exists() else (shutil.which(tool) or str(path))


def _write(path: Path, text: str, *, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o755 if executable else 0o644)
    tmp.replace(path)


def _template(name: str, subst: Mapping[str, str]) -> str:
    text = (_SRC / "tools" / name).read_text()
    for key, value in subst.items():
        text = text.replace(key, value)
    return text


def _install_scripts(prefix: Path, subst: Mapping[str, str], *, host_libc: bool = False) -> None:
    bin_dir, libexec = prefix / "bin", prefix / _LIBEXEC
    exec_line = '#!/bin/sh\nexec {} "$@"\n'
    for tool in (*_BINUTILS, "cpp"):
        _write(libexec / f"x86_64--netbsd-{tool}", exec_line.format(_host(tool)), executable=True)
        _write(bin_dir / f"{TUPLE}-{tool}", exec_line.format(f"{libexec}/x86_64--netbsd-{tool}"), executable=True)
    _write(libexec / "x86_64--netbsd-gcc", exec_line.format(_host("gcc")), executable=True)
    _write(libexec / "x86_64--netbsd-c++", exec_line.format(_host("g++")), executable=True)
    _write(libexec / "brprintmetainfo", _template("brprintmetainfo.in", subst), executable=True)
    for name, driver, lang, extralibs in (("gcc", "gcc", "C", ""), ("g++", "c++", "C++", "-lc++ -lunwind")):
        text = _template("cc.in", {**subst, "@DRIVER@": driver, "@LANG@": lang, "@EXTRALIBS@": extralibs})
        _write(bin_dir / f"{TUPLE}-{name}", text, executable=True)
    _write(bin_dir / f"{TUPLE}-cookfs", _template("cookfs.in", subst), executable=True)
    _write(bin_dir / "rumprun-bake", _template("rumprun-bake.in", subst), executable=True)
    rumpbake = bin_dir / "rumpbake"
    rumpbake.unlink(missing_ok=True)
    os.link(bin_dir / "rumprun-bake", rumpbake)
    _write(bin_dir / "rumprun", _template("rumprun.in", subst), executable=True)
    _write(bin_dir / "rumpstop", _template("rumpstop.in", subst), executable=True)
    _write(prefix / "etc/rumprun-bake.conf", _template("rumprun-bake.conf", subst))
    sysroot = prefix / "rumprun-x86_64"
    _write(sysroot / f"share/{TUPLE}-recipe.s", _template("recipe.s.in", subst))
    _write(sysroot / f"share/{TUPLE}-toolchain.cmake", _template("toolchain.cmake.in", subst))
    variant = ".host" if host_libc else ""
    if host_libc:
        subst = {**subst, "@MULTIARCH@": _host_query("gcc", "-print-multiarch"),
                 "@GCCLIB@": str(Path(_host_query("gcc", "-print-libgcc-file-name")).parent)}
    _write(sysroot / "lib/specs-compile_or_ferment", _template(f"specs-compile_or_ferment{variant}.in", subst))
    _write(sysroot / "lib/specs-stub", _template(f"specs-stub{variant}.in", subst))
    _write(sysroot / "lib/rumprun-hw/specs-bake", _template(f"specs-bake{variant}.in", subst))
    shutil.copyfile(_SRC / "guest" / "hw.ldscript", sysroot / "lib/hw.ldscript")


def _host_query(tool: str, option: str) -> str:
    return subprocess.run([_host(tool), option], capture_output=True, text=True, check=True).stdout.strip()


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode:
        msg = f"fake rumprun install: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}"
        raise RuntimeError(msg)


def _first_line(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[0]


def _compile_all(jobs: list[list[str]]) -> None:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_run, jobs))


def _archive(lib: Path, objects: list[Path]) -> None:
    lib.unlink(missing_ok=True)
    _run([_host("ar"), "rcs", str(lib), *map(str, objects)])


def _build_sysroot_libs(prefix: Path, build: Path) -> None:
    """libc.a, libc++.a and friends from src/libc, plus pseudolinkstubs.o."""
    lib, include = prefix / "rumprun-x86_64/lib", prefix / "rumprun-x86_64/include"
    cflags = [*_FREESTANDING, "-O2", "-fno-builtin", "-fno-tree-loop-distribute-patterns",
              "-nostdinc", "-isystem", str(include)]
    sources = sorted((_SRC / "libc").glob("*.[cS]"))
    placeholder = build / "placeholder.s"
    placeholder.write_text('\t.section .note.GNU-stack,"",@progbits\n')
    jobs = [[_host("gcc"), *cflags, "-c", str(src), "-o", str(build / f"{src.stem}.o")] for src in sources]
    jobs.append([_host("as"), "-o", str(build / "placeholder.o"), str(placeholder)])
    _compile_all(jobs)
    # Compiled from src/ with -g: stub-link errors name pseudolinkstubs.c:6.
    _run([_host("gcc"), *cflags, "-O0", "-g", "-c", "pseudolinkstubs.c", "-o", str(lib / "pseudolinkstubs.o")],
         cwd=_SRC)
    libc_objs = [build / f"{src.stem}.o" for src in sources if src.stem != "cxxrt"]
    _archive(lib / "libc.a", libc_objs)
    _archive(lib / "libc++.a", [build / "cxxrt.o"])
    for name in ("libm.a", "libpthread.a", "libunwind.a"):
        _archive(lib / name, [build / "placeholder.o"])
    for name in ("libc.a", "libpthread.a", "libm.a"):
        link = lib / "rumprun-hw" / name
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / name)


def _build_guest_runtime(prefix: Path, build: Path, runtime_dir: Path) -> None:
    """rumprun.o: the ukbuild Multiboot runtime plus the fake Rumprun guest."""
    missing = [n for n in ("uk.h", "boot-x86_64.S", "kernel.c", "serial.c") if not (runtime_dir / n).exists()]
    if missing:
        msg = f"fake rumprun: the Multiboot runtime is missing {', '.join(missing)} in {runtime_dir}"
        raise FileNotFoundError(msg)
    include = prefix / "rumprun-x86_64/include"
    gcc, out = _host("gcc"), build / "guest"
    out.mkdir()
    cflags = [*_FREESTANDING, "-O2", "-g", "-I", str(runtime_dir)]
    sources = [
        ("boot", runtime_dir / "boot-x86_64.S", ["-m64", "-I", str(runtime_dir)]),
        ("bootstrap", _SRC / "guest" / "bootstrap.S", ["-m64"]),
        ("kernel", runtime_dir / "kernel.c", cflags),
        ("serial", runtime_dir / "serial.c", cflags),
        ("guest", _SRC / "guest" / "rumprun.c",
         [*cflags, "-mgeneral-regs-only", "-nostdinc", "-isystem", str(include)]),
    ]
    _compile_all([[gcc, *flags, "-c", str(src), "-o", str(out / f"{name}.o")] for name, src, flags in sources])
    # boot.o first: its _start begins .text, which the ldscript puts at 0x104000.
    objects = [str(out / f"{name}.o") for name, _, _ in sources]
    _run([_host("ld"), "-r", "-o", str(prefix / "rumprun-x86_64/lib/rumprun-hw/rumprun.o"), *objects])


def _component_names(conf: str) -> list[str]:
    names = {"rump", "rumprun_base"} | set(re.findall(r"-l(\w+)", conf))
    return sorted(names)


def _build_component_libs(prefix: Path, build: Path) -> None:
    """Placeholder librump*.a archives for every component the configs name."""
    hw = prefix / "rumprun-x86_64/lib/rumprun-hw"
    names = _component_names((prefix / "etc/rumprun-bake.conf").read_text())
    jobs, members = [], {}
    for name in names:
        pad = {"rump": _RUMP_BASE_PAD, "rumprun_base": 0}.get(name, _COMPONENT_PAD)
        src = build / f"lib{name}.s"
        text = (
            '\t.section .note.GNU-stack,"",@progbits\n'
            '\t.section .debug_rumpfake,"",@progbits\n'
            f'\t.ascii "fake rump kernel component lib{name}"\n'
            f"\t.skip {pad}\n"
        )
        if name == "rumpdev_pci_if_wm":
            # hw_generic reports less memory at boot; this is how the fake knows.
            text += "\t.data\n\t.globl __rumprun_fake_memory_kb\n__rumprun_fake_memory_kb:\n\t.long 30184\n"
        src.write_text(text)
        members[name] = build / f"lib{name}.o"
        jobs.append([_host("as"), "-o", str(members[name]), str(src)])
    _compile_all(jobs)
    for name in names:
        _archive(hw / f"lib{name}.a", [members[name]])
