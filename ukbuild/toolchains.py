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
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
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
#: A tool looked up on a search path: (name, search path, the path found or None).
Lookup = tuple[str, tuple[str, ...], str | None]

_lookups: ContextVar[list[Lookup] | None] = ContextVar("ukbuild_tool_lookups", default=None)


def find_tool(name: str, search_path: Iterable[str]) -> str | None:
    search = tuple(search_path)
    found = shutil.which(name, path=os.pathsep.join(search))
    lookups = _lookups.get()
    if lookups is not None:
        lookups.append((name, search, found))
    return found


@contextmanager
def watching_lookups() -> Iterator[list[Lookup]]:
    """Collect every :func:`find_tool` call made inside (toolchain detection): a new
    tool earlier on a search path than the one found changes the toolchain."""
    lookups: list[Lookup] = []
    token = _lookups.set(lookups)
    try:
        yield lookups
    finally:
        _lookups.reset(token)


def shadowing(lookup: Lookup) -> list[str]:
    """The paths that would shadow a lookup's result: the name in each directory before
    the one it was found in (every one, when it was not found)."""
    name, search, found = lookup
    if os.sep in name:
        return []
    paths = []
    for directory in search:
        candidate = os.path.join(directory, name)
        if candidate == found:
            break
        paths.append(candidate)
    return paths


def link_chain(path: str) -> list[str]:
    """Every symlink met resolving ``path`` (a link in any component, and the links they
    lead to: ``/usr/bin/cc -> /etc/alternatives/cc -> /usr/bin/gcc-12``), then the path it
    resolves to.  Retargeting any of them changes what ``path`` is."""
    links: list[str] = []
    pending = os.path.abspath(path)
    for _ in range(40):  # (the kernel's limit on links followed)
        parts = pending.split("/")[1:]
        prefix = ""
        for i, part in enumerate(parts):
            current = f"{prefix}/{part}"
            if os.path.islink(current):
                links.append(current)
                target = os.readlink(current)
                base = target if target.startswith("/") else f"{prefix or '/'}/{target}"
                pending = os.path.normpath("/".join([base, *parts[i + 1 :]]))
                break
            prefix = current
        else:
            break
    return [*dict.fromkeys(links), os.path.realpath(path)]


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


def tool_paths(toolchain: Toolchain, lookups: Iterable[Lookup] = ()) -> list[str]:
    """The paths whose change must invalidate a cached toolchain identity: each tool and
    identifying file with every link on the way to it (:func:`link_chain`), and for each
    of ``lookups`` (the :func:`find_tool` calls of its detection) the paths that would
    shadow what was found (with the links on their way, when they exist)."""
    paths = [p for t in toolchain.tools for p in link_chain(t.path)]
    paths += [p for path, _digest in toolchain.files for p in link_chain(path)]
    for lookup in lookups:
        for candidate in shadowing(lookup):
            paths += link_chain(candidate) if os.path.lexists(candidate) else [candidate]
    return list(dict.fromkeys(paths))


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
