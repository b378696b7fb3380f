"""Finding a MirageOS 4 toolchain (an opam switch) and Solo5, and what identifies them."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ukbuild.model import Tool, Toolchain
from ukbuild.plugins import DetectContext, Detection
from ukbuild.toolchains import HOST_SEARCH_PATH, find_tool, tool_version

from .targets import TARGETS

NAME = "mirage"
MIRAGE_ENV = "UKBUILD_MIRAGE_PREFIX"
SOLO5_ENV = "UKBUILD_SOLO5_PREFIX"
OCAML_TOOLS = ("mirage", "opam", "dune", "ocamlfind")
#: The oldest mirage whose build is ``dune build ./dist`` (4.5 removed ``mirage build``).
MIN_MIRAGE = (4, 5)


def solo5_tools(arch: str) -> tuple[str, ...]:
    return ("solo5-elftool", f"{arch}-solo5-none-static-cc", f"{arch}-solo5-none-static-ld")


def _probe(path: str, args: tuple[str, ...], context: DetectContext) -> str:
    """Everything ``path ARGS`` prints (stdout, else stderr), cached by the binary's stat."""
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    slot = f"{path}\0{' '.join(args)}"
    hit = context.versions.get(slot)
    if hit is not None and tuple(hit[0]) == stamp:
        return hit[1]
    try:
        proc = subprocess.run([path, *args], capture_output=True, timeout=20, check=False,
                              env={"LC_ALL": "C", "PATH": os.pathsep.join((str(Path(path).parent), *HOST_SEARCH_PATH))})
        text = (proc.stdout.strip() or proc.stderr.strip()).decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    context.versions[slot] = (stamp, text)
    return text


def _version_tuple(text: str) -> tuple[int, ...] | None:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def _tool(name: str, path: str, version: str, context: DetectContext) -> Tool:
    real = os.path.realpath(path)
    return Tool(name, path, version, str(context.file_digest(real, os.stat(real))))


def _search(option: object, env_var: str, context: DetectContext) -> tuple[str | None, tuple[str, ...]]:
    prefix = option if isinstance(option, str) else context.environ.get(env_var)
    if prefix:
        return prefix, (str(Path(prefix) / "bin"),)
    return None, tuple(p for p in context.environ.get("PATH", "").split(os.pathsep) if p)


def _solo5(arch: str, search: tuple[str, ...], context: DetectContext) -> tuple[list[Tool], str, Path] | None:
    """Solo5's elftool and compiler wrappers in ``search``: their tools, version and bindings dir."""
    found = {tool: find_tool(tool, search) for tool in solo5_tools(arch)}
    if not all(found.values()):
        return None
    elftool = str(found["solo5-elftool"])
    m = re.search(r"version (\S+)", _probe(elftool, (), context))
    version = m.group(1) if m else "unknown"
    tools = [_tool(tool, str(path), version, context) for tool, path in found.items()]
    return tools, version, Path(os.path.realpath(elftool)).parent.parent / "lib" / f"{arch}-solo5-none-static"


def _host_cc(context: DetectContext) -> Tool | None:
    cc = find_tool("cc", HOST_SEARCH_PATH)
    return _tool("cc", cc, tool_version(os.path.realpath(cc), context.versions), context) if cc else None


def detect(options: Mapping[str, object], context: DetectContext) -> Detection:
    """Find mirage/opam/dune/ocamlfind (and Solo5) and build the toolchain's identity.

    Without MirageOS, a Solo5 installation alone is a toolchain for bare Solo5 C
    unikernels (``kind = "solo5"``); no MirageOS target is buildable with it.
    """
    arch = str(options.get("arch", "x86_64"))
    prefix, search = _search(options.get("prefix"), MIRAGE_ENV, context)
    solo5_prefix, solo5_search = _search(options.get("solo5_prefix"), SOLO5_ENV, context)
    not_buildable = dict.fromkeys(TARGETS, False)

    def missing(reason: str, searched: tuple[str, ...] = search, env_var: str = MIRAGE_ENV) -> Detection:
        return Detection(NAME, None, searched=searched, reason=reason, env_var=env_var, targets=not_buildable)

    cc = _host_cc(context)
    if cc is None:
        return missing("the host C compiler 'cc' is not installed (apt-get install gcc)", HOST_SEARCH_PATH)
    paths = {tool: find_tool(tool, search) for tool in OCAML_TOOLS}
    absent = [tool for tool, path in paths.items() if path is None]
    if absent:
        where = f"{prefix}/bin" if prefix else "PATH"
        solo5 = _solo5(arch, solo5_search, context)
        if solo5 is None:
            return missing(f"{', '.join(absent)} not found in {where} (a MirageOS 4 opam switch: "
                           "opam install mirage opam-monorepo), and no Solo5 for bare C unikernels either "
                           f"(solo5-elftool and {arch}-solo5-none-static-cc; set {SOLO5_ENV})",
                           (*search, *solo5_search))
        tools, solo5_version, _bindings = solo5
        home = Path(tools[0].path).parent.parent
        toolchain = Toolchain(name=NAME, tools=[*tools, cc], prefix=str(home), extra={"solo5": solo5_version},
                              search_path=(*dict.fromkeys(str(Path(t.path).parent) for t in tools), *HOST_SEARCH_PATH),
                              compilers=("cc",))
        return Detection(NAME, toolchain, version=f"Solo5 {solo5_version} only (no MirageOS: {', '.join(absent)} "
                         f"not found in {where}): bare Solo5 C unikernels", searched=(*search, *solo5_search),
                         env_var=MIRAGE_ENV, targets=not_buildable)
    found = {tool: path for tool, path in paths.items() if path is not None}
    mirage_version = _probe(found["mirage"], ("--version",), context)
    parsed = _version_tuple(mirage_version)
    if parsed is None or parsed[:2] < MIN_MIRAGE:
        return missing(f"mirage {mirage_version or '(no version)'} at {found['mirage']} is too old: this backend "
                       f"drives mirage >= {MIN_MIRAGE[0]}.{MIN_MIRAGE[1]} (dune build ./dist; older releases "
                       "used `mirage build`); upgrade with opam install 'mirage>=4.5'")
    ocaml_version = _probe(found["ocamlfind"], ("ocamlopt", "-version"), context)
    switch = Path(os.path.realpath(found["mirage"])).parent.parent
    tools = [
        _tool("mirage", found["mirage"], mirage_version, context),
        _tool("opam", found["opam"], _probe(found["opam"], ("--version",), context), context),
        _tool("dune", found["dune"], _probe(found["dune"], ("--version",), context), context),
        _tool("ocamlfind", found["ocamlfind"], f"OCaml {ocaml_version}", context),
        cc,
    ]
    extra = {"ocaml": ocaml_version, "mirage": mirage_version}
    switch_state = switch / ".opam-switch" / "switch-state"
    if switch_state.is_file():
        extra["opam-switch-state"] = str(context.file_digest(str(switch_state), os.stat(switch_state)))
    if solo5_prefix is None:
        solo5_search = (str(switch / "bin"), *search)
    solo5 = _solo5(arch, solo5_search, context)
    bindings = None
    solo5_version = None
    if solo5 is not None:
        found_solo5, solo5_version, bindings = solo5
        extra["solo5"] = solo5_version
        tools += found_solo5
    findlib = switch / "lib" / "findlib.conf.d"
    targets = {}
    for name, target in TARGETS.items():
        if target.family == "unix":
            targets[name] = True
        elif target.family == "unikraft":
            targets[name] = (findlib / "unikraft.conf").is_file()
        else:
            targets[name] = bool(bindings and (bindings / f"solo5_{target.abi}.o").is_file()
                                 and (findlib / "solo5.conf").is_file())
    opam_root = context.environ.get("OPAMROOT") or (
        str(switch.parent) if (switch.parent / "config").is_file() else str(Path(context.environ.get("HOME", "/root")) / ".opam"))
    env = {"OPAMROOT": opam_root, "OPAM_SWITCH_PREFIX": str(switch),
           "OPAMSWITCH": context.environ.get("OPAMSWITCH") or (switch.name if str(switch.parent) == opam_root else str(switch.parent))}
    dirs = dict.fromkeys([str(Path(t.path).parent) for t in tools if t.name != "cc"])
    toolchain = Toolchain(
        name=NAME, tools=tools, search_path=(*dirs, *HOST_SEARCH_PATH), prefix=str(switch), extra=extra,
        compilers=("cc",), env=env,
    )
    version = f"mirage {mirage_version}, OCaml {ocaml_version}" + (f", Solo5 {solo5_version}" if solo5_version else "")
    return Detection(NAME, toolchain, version=version, searched=(*search, *solo5_search), env_var=MIRAGE_ENV,
                     targets=targets)
