"""Finding the tools a toolchain is made of, and what identifies them.

Detection is kept apart from build logic (as Meson does): it resolves each
tool on the toolchain's own search path — never the caller's ambient PATH —
asks it for its version, and hashes the binary.  Versions are cached by the
binary's stat so a rebuild does not start a process per tool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, MutableMapping
from pathlib import Path

from ._reapi import Digest
from .errors import ToolchainError
from .model import Origin, Tool, Toolchain

#: The host's standard program directories, in Debian's order for root.
HOST_SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
#: Host compilers get a path-mapping wrapper (see the executor).
HOST_COMPILERS = ("cc", "gcc", "c++", "g++", "cpp")
#: ukbuild's own programs that actions can run, by command name → module.
PROGRAMS = {"ukbuild-emit": "ukbuild.emitters", "ukbuild-app": "ukbuild.app.tool"}

FileDigest = Callable[[str, os.stat_result], Digest]


def find_tool(name: str, search_path: Iterable[str]) -> str | None:
    return shutil.which(name, path=os.pathsep.join(search_path))


def tool_version(path: str, versions: MutableMapping[str, tuple[tuple[int, int], str]]) -> str:
    """The first line ``TOOL --version`` prints (cached by the binary's mtime and size)."""
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    hit = versions.get(path)
    if hit is not None and tuple(hit[0]) == stamp:
        return hit[1]
    try:
        proc = subprocess.run(
            [path, "--version"], capture_output=True, timeout=20, check=False,
            env={"LC_ALL": "C", "PATH": os.pathsep.join(HOST_SEARCH_PATH)},
        )
        lines = (proc.stdout or proc.stderr).decode(errors="replace").splitlines()
        version = lines[0].strip() if lines and proc.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        version = "unknown"
    versions[path] = (stamp, version)
    return version


def detect_host_toolchain(
    tools: Iterable[str],
    *,
    file_digest: FileDigest,
    versions: MutableMapping[str, tuple[tuple[int, int], str]],
    name: str = "host",
    origin: Origin | None = None,
    search_path: Iterable[str] = HOST_SEARCH_PATH,
    launchers: Iterable[str] = (),
) -> Toolchain:
    """Resolve each named tool on the host; a missing one is a ToolchainError naming it."""
    search = tuple(search_path)
    found: list[Tool] = []
    for tool in tools:
        path = find_tool(tool, search)
        if path is None:
            where = f"{origin}: toolchain.{name}.tools" if origin else f"toolchain.{name}.tools"
            raise ToolchainError(
                f"{where}: tool '{tool}' not found in {os.pathsep.join(search)}",
                hint=f"install it (e.g. apt-get install the package providing '{tool}'), "
                "or remove it from the toolchain's tools",
                reason="tool-not-found",
            )
        real = os.path.realpath(path)
        found.append(Tool(tool, path, tool_version(real, versions), str(file_digest(real, os.stat(real)))))
    return Toolchain(
        name=name,
        tools=found,
        search_path=search,
        compilers=[t.name for t in found if t.name in HOST_COMPILERS],
        launchers=launchers,
    )


def tool_paths(toolchain: Toolchain) -> list[str]:
    """The files whose change must invalidate a cached toolchain identity."""
    return [os.path.realpath(t.path) for t in toolchain.tools] + [path for path, _digest in toolchain.files]


def needs_wrappers(toolchain: Toolchain) -> bool:
    return bool(toolchain.compilers or toolchain.launchers)


def write_wrappers(toolchain: Toolchain, directory: Path, logical_root: str) -> None:
    """Put the toolchain's wrapped compilers and ukbuild's own programs in ``directory``.

    Compilers are wrapped so what they write never names the scratch
    directory: ``-ffile-prefix-map`` maps the scratch root (``$UKBUILD_WORK``)
    to the logical build path in debug info, ``__FILE__`` and friends.
    """
    for name in toolchain.launchers:
        script = directory / name
        script.write_text(f'#!/bin/sh\nexec {_sh_quote(sys.executable)} -m {PROGRAMS[name]} "$@"\n')
        script.chmod(0o755)
    for name in toolchain.compilers:
        tool = toolchain.tool(name)
        if tool is None:
            continue
        script = directory / name
        script.write_text(
            "#!/bin/sh\n"
            f'exec {_sh_quote(tool.path)} "-ffile-prefix-map=$UKBUILD_WORK={logical_root}" "$@"\n'
        )
        script.chmod(0o755)


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
