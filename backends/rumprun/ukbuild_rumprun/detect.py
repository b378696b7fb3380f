"""Finding a Rumprun toolchain and what identifies it.

An install is found under ``$UKBUILD_RUMPRUN_PREFIX/bin``, else under the
``prefix`` option of its ``[toolchain.X]`` table, else on ``PATH``.  Its
identity is what the tools say about themselves (versions, the sysroot),
the digests of the wrappers, of the backing compiler driver and of the host
``cc1``/``as``/``ld`` it runs, of the bake configuration file and of the
sysroot files every build uses, and the install prefix (the install embeds
it and cannot be moved).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path

import attrs

from ukbuild.model import Tool, Toolchain
from ukbuild.toolchains import HOST_SEARCH_PATH, find_tool, tool_version

ENV_VAR = "UKBUILD_RUMPRUN_PREFIX"
#: Toolchain tuples, preferred first, and the architecture each one bakes for.
TUPLES: Mapping[str, str] = {"x86_64-rumprun-netbsd": "x86_64", "i486-rumprun-netbsdelf": "i486"}
#: Bake configurations ukbuild knows (upstream's, plus the cloudkernels fork's Solo5 ones).
KNOWN_CONFIGS = ("hw_generic", "hw_virtio", "hw_virtio_scsi", "xen_pv", "xen_pci", "solo5_hvt", "solo5_spt")
BINUTILS = ("ar", "as", "ld", "nm", "objcopy", "objdump", "ranlib", "readelf", "strip")
#: Configure answers a cross build cannot compute (toolchains.md, "Porting the web stack"):
#: nothing that forks or loads code works, PHP needs sigsetjmp, AC_CHECK_FILE aborts.
CONFIGURE_ANSWERS: Mapping[str, str] = {
    "ac_cv_c_bigendian": "no",
    "ac_cv_file__dev_zero": "no",
    "ac_cv_func_dlopen": "no",
    "ac_cv_func_fork": "no",
    "ac_cv_func_fork_works": "no",
    "ac_cv_func_sigsetjmp": "yes",
    "ac_cv_func_vfork": "no",
    "ac_cv_func_vfork_works": "no",
    "ac_cv_lib_dl_dlopen": "no",
}

Versions = MutableMapping[str, tuple[tuple[int, int], str]]
FileDigest = Callable[[str, os.stat_result], object]
#: (name, path, version or None to ask the tool) -> Tool
MakeTool = Callable[..., Tool]


class NotFound(Exception):
    """No usable toolchain where detection looked; ``args[0]`` says why."""


@attrs.frozen
class Found:
    """A detected install: the toolchain plus what ``ukbuild backends`` shows."""

    toolchain: Toolchain
    version: str
    configs: Mapping[str, bool]


def candidates(options: Mapping[str, object], environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Where to look: a description of the choice, and the bin directories in order."""
    if environ.get(ENV_VAR):
        return f"{ENV_VAR}={environ[ENV_VAR]}", [os.path.join(environ[ENV_VAR], "bin")]
    prefix = options.get("prefix")
    if prefix is not None:
        if not isinstance(prefix, str) or not os.path.isabs(prefix):
            msg = f"the toolchain's prefix must be an absolute path (got {prefix!r})"
            raise NotFound(msg)
        return f"prefix = {prefix!r}", [os.path.join(prefix, "bin")]
    return "PATH", [d for d in environ.get("PATH", "").split(os.pathsep) if d]


def locate(bin_dirs: Iterable[str]) -> tuple[str, str] | None:
    """The first directory holding ``TUPLE-gcc`` and ``rumprun-bake``, and that tuple."""
    for directory in bin_dirs:
        if not os.access(os.path.join(directory, "rumprun-bake"), os.X_OK):
            continue
        for tuple_ in TUPLES:
            if os.access(os.path.join(directory, f"{tuple_}-gcc"), os.X_OK):
                return directory, tuple_
    return None


def probe(path: str, args: Iterable[str], versions: Versions, *, ok: Iterable[int] = (0,)) -> str:
    """What ``path args…`` prints on stdout, cached by the binary's stat like tool versions.

    Runs in an empty directory with the host's PATH; raises NotFound on an
    unexpected exit status.
    """
    argv = [path, *args]
    st = os.stat(path)
    stamp, cache_key = (st.st_mtime_ns, st.st_size), "\0".join(argv)
    hit = versions.get(cache_key)
    if hit is not None and tuple(hit[0]) == stamp:
        return hit[1]
    env = {"LC_ALL": "C", "PATH": os.pathsep.join(HOST_SEARCH_PATH), "RUMPRUN_WARNING_STFU": "please"}
    with tempfile.TemporaryDirectory(prefix="ukbuild-rumprun-probe.") as cwd:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            msg = f"{' '.join(argv)} could not run: {exc}"
            raise NotFound(msg) from exc
    if proc.returncode not in tuple(ok):
        msg = f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]}"
        raise NotFound(msg)
    versions[cache_key] = (stamp, proc.stdout)
    return proc.stdout


def detect(bin_dir: str, tuple_: str, *, file_digest: FileDigest, versions: Versions) -> Found:
    """Read the install at ``bin_dir/..`` from its tools; NotFound if it is unusable."""
    gcc = os.path.join(bin_dir, f"{tuple_}-gcc")
    bake = os.path.join(bin_dir, "rumprun-bake")
    sysroot = Path(probe(gcc, ["-print-sysroot"], versions).strip())
    prefix = sysroot.parent
    if not sysroot.is_absolute() or not (prefix / "bin").is_dir():
        msg = f"{gcc} -print-sysroot says {str(sysroot)!r}, which is not PREFIX/rumprun-ARCH of an install"
        raise NotFound(msg)
    usage = probe(bake, [], versions, ok=(1,)).splitlines()
    bake_version = usage[0].strip() if usage else ""
    if not bake_version.startswith("rumprun-bake version:"):
        msg = f"{bake} printed no 'rumprun-bake version:' line; is it Rumprun's bake tool?"
        raise NotFound(msg)
    listed = [line.split(":", 1)[0].strip() for line in probe(bake, ["list"], versions).splitlines() if ":" in line]

    def tool(name: str, path: str, version: str | None = None) -> Tool:
        real = os.path.realpath(path)
        digest = str(file_digest(real, os.stat(real)))
        return Tool(name, path, tool_version(real, versions) if version is None else version, digest)

    tools = [tool(f"{tuple_}-gcc", gcc)]
    gxx = os.path.join(bin_dir, f"{tuple_}-g++")
    if os.access(gxx, os.X_OK):
        tools.append(tool(f"{tuple_}-g++", gxx))
    tools += [tool(f"{tuple_}-{b}", p) for b in BINUTILS if os.access(p := os.path.join(bin_dir, f"{tuple_}-{b}"), os.X_OK)]
    tools.append(tool("rumprun-bake", bake, bake_version))
    tools += _host_compiler(prefix, tool, versions)
    tools += _identity_files(prefix, sysroot, tuple_, tool)
    env = _cross_env(tuple_, sysroot, {t.name for t in tools}, _intrinsics_dir(tools, versions))
    compilers = [t.name for t in tools if t.name in (f"{tuple_}-gcc", f"{tuple_}-g++")]
    toolchain = Toolchain(
        name="rumprun", tools=tools, search_path=(bin_dir, *HOST_SEARCH_PATH),
        prefix=str(prefix), compilers=compilers, env=env,
    )
    gcc_version = tools[0].version
    configs = {c: c in listed and (sysroot / "lib" / f"rumprun-{c.split('_')[0]}").is_dir()
               for c in sorted({*KNOWN_CONFIGS, *listed})}
    version = f"{tuple_}, {bake_version.replace(' version:', '')}, {gcc_version}"
    return Found(toolchain, version, configs)


def _host_compiler(prefix: Path, tool: MakeTool, versions: Versions) -> list[Tool]:
    """The backing compiler drivers and the host cc1/cc1plus, as and ld they run."""
    found: list[Tool] = []
    for pattern, progs in (("*-gcc", ("cc1", "as", "ld")), ("*-c++", ("cc1plus",))):
        for driver in sorted(prefix.glob(f"libexec/rumprun-*/{pattern}")):
            label = f"{driver.parent.name}/{driver.name}"
            backing = tool(f"backing[{label}]", str(driver))
            found.append(backing)
            for prog in progs:
                named = probe(str(driver), [f"-print-prog-name={prog}"], versions).strip()
                path = named if os.path.isabs(named) else find_tool(named, HOST_SEARCH_PATH)
                if path is None or not os.path.exists(path):
                    msg = f"{driver} runs {prog} as {named!r}, which is not on the host ({os.pathsep.join(HOST_SEARCH_PATH)})"
                    raise NotFound(msg)
                # cc1 reads stdin on --version; the driver's version names it instead.
                version = backing.version if prog.startswith("cc1") else None
                found.append(tool(f"host-{prog}[{label}]", path, version))
    if not any(t.name.endswith("-gcc]") for t in found):
        msg = f"no backing compiler driver in {prefix}/libexec/rumprun-*/"
        raise NotFound(msg)
    return found


def _identity_files(prefix: Path, sysroot: Path, tuple_: str, tool: MakeTool) -> list[Tool]:
    """The bake configuration and the sysroot files every compile, ferment and bake reads."""
    names = [
        prefix / "etc" / "rumprun-bake.conf",
        sysroot / "lib" / "libc.a",
        sysroot / "lib" / "specs-compile_or_ferment",
        sysroot / "lib" / "specs-stub",
        sysroot / "share" / f"{tuple_}-recipe.s",
        sysroot / "share" / f"{tuple_}-toolchain.cmake",
        *sorted(sysroot.glob("lib/rumprun-*/rumprun.o")),
        *sorted(sysroot.glob("lib/rumprun-*/specs-bake")),
    ]
    missing = [str(p) for p in names[:1] if not p.is_file()]
    if missing:
        msg = f"the install has no {missing[0]}"
        raise NotFound(msg)
    return [tool(str(p.relative_to(prefix)), str(p), "") for p in names if p.is_file()]


def _intrinsics_dir(tools: list[Tool], versions: Versions) -> str | None:
    """GCC's own include directory (intrinsics), which the wrappers' -nostdinc hides."""
    driver = next((t for t in tools if t.name.startswith("backing[") and t.name.endswith("-gcc]")), None)
    if driver is None:
        return None
    path = probe(driver.path, ["-print-file-name=include"], versions).strip()
    return path if os.path.isabs(path) else None


def _cross_env(tuple_: str, sysroot: Path, names: set[str], intrinsics: str | None) -> dict[str, str]:
    """What every action using the toolchain gets: tools, --host triple, CMake file, answers."""
    env = {
        "UKBUILD_HOST": tuple_,
        "RUMPRUN_SYSROOT": str(sysroot),
        "CMAKE_TOOLCHAIN_FILE": str(sysroot / "share" / f"{tuple_}-toolchain.cmake"),
        "CC": f"{tuple_}-gcc",
        # The standalone TUPLE-cpp is plain host cpp without the specs (no __NetBSD__).
        "CPP": f"{tuple_}-gcc -E",
        **CONFIGURE_ANSWERS,
    }
    if f"{tuple_}-g++" in names:
        env["CXX"] = f"{tuple_}-g++"
    for var, prog in (("AR", "ar"), ("AS", "as"), ("LD", "ld"), ("NM", "nm"), ("OBJCOPY", "objcopy"),
                      ("OBJDUMP", "objdump"), ("RANLIB", "ranlib"), ("READELF", "readelf"), ("STRIP", "strip")):
        if f"{tuple_}-{prog}" in names:
            env[var] = f"{tuple_}-{prog}"
    if intrinsics:
        flags = f"-g -O2 -idirafter {intrinsics}"
        env["CFLAGS"] = env["CXXFLAGS"] = flags
    return env
