"""Load a project file (``ukbuild.toml``) into model values.

This is the one place where user data is narrowed from ``dict[str, object]``
to typed values.  Every mistake becomes a :class:`ConfigError` whose message
reads ``file:line: field: what is wrong`` and whose hint says how to fix it.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import attrs

from ._graph import check_graph, closure
from ._noop import UNKNOWN, stat_of
from ._origins import Origins, read_toml
from .errors import ConfigError
from .model import (
    Action,
    ArchiveSource,
    Input,
    LocalSource,
    NativeStage,
    Origin,
    OutputInput,
    Package,
    PathInput,
    Platform,
    Project,
    Source,
    ToolchainSpec,
)
from .packages import package_actions

if TYPE_CHECKING:
    from .images import ImageSpec
    from .plugins import Backend, UnikernelSpec

PROJECT_FILE = "ukbuild.toml"
DEFAULT_TOOLCHAIN = "host"
DEFAULT_HOST_TOOLS = ("cc", "ar", "sh", "tar")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_TOP = {"project", "toolchain", "action", "package", "unikernel", "image"}
_PROJECT = {"name", "default", "include"}
_TOOLCHAIN = {"tools"}
_ACTION = {"command", "outputs", "inputs", "deps", "env", "toolchain", "workdir", "foreach", "salt", "network", "rootfs"}
_PACKAGE = {"version", "source", "depends", "toolchain", "steps", "env", "configure_answers", "stubs", "targets", "native"}
_NATIVE = {"steps", "env", "toolchain"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: What the executor sets after an action's own env (so a value given there would be ignored), and
#: what to do instead.  LC_ALL, TZ and SOURCE_DATE_EPOCH have defaults an action may change.
_SET_BY_UKBUILD = {
    "PATH": "it is the toolchain's search path: list the programs in [toolchain.NAME] tools, or call"
            " a program by its path in the command",
    "HOME": "each action gets its own empty HOME in its scratch dir; remove it (a command can"
            " write what a tool expects there, or pass the tool an option)",
    "TMPDIR": "each action gets its own empty TMPDIR in its scratch dir; remove it",
    "UKBUILD_WORK": "it is the scratch root the action runs in; remove it",
}
_ARCHIVE = {"url", "sha256", "strip", "patches"}
_LOCAL = {"path", "patches"}
_DEP = {"action", "at", "path"}


def host_platform() -> Platform:
    import sysconfig  # noqa: PLC0415 - only needed when a project is loaded

    triple = sysconfig.get_config_var("MULTIARCH") or f"{os.uname().machine}-linux-gnu"
    return Platform(build=triple, host=triple, target=triple)


def find_project_file(path: Path) -> Path:
    """``path`` itself if it is a file, else ``path/ukbuild.toml``."""
    candidate = path / PROJECT_FILE if path.is_dir() else path
    if not candidate.is_file() and candidate.name == PROJECT_FILE and candidate.parent.is_file():
        raise ConfigError(  # `-C ukbuild.toml`: the CLI looked for DIR/ukbuild.toml
            f"{candidate.parent}: is a file, not a project directory",
            hint=f"-C takes the project's directory; to name the project file, use -f {candidate.parent}",
            reason="no-project",
        )
    if not candidate.is_file():
        raise ConfigError(
            f"{candidate}: no project file",
            hint=f"run ukbuild in a directory with a {PROJECT_FILE}, or pass -f FILE",
            reason="no-project",
        )
    return candidate


def load_project(
    path: Path | str, backends: Mapping[str, Backend] | None = None, *, retarget: Mapping[str, str] | None = None
) -> Project:
    """Read and validate a project file; raises ConfigError with file:line on any mistake.

    ``backends`` (by name) plan the ``[unikernel.*]`` tables; by default the
    installed backend plugins are loaded, only if the project has such tables.
    ``retarget`` maps toolchain names to others for every package, e.g.
    ``{"rumprun": "host"}`` to run a cross recipe's steps natively (a smoke
    build): packages no longer built with a backend's toolchain get no
    ``configure_answers``.
    """
    file = find_project_file(Path(path)).absolute()  # not resolve(): symlinked inputs (Bazel) stay where given
    before = stat_of(str(file))  # before reading: an edit from now on is seen by the next build
    data, text = read_toml(file)
    loader = _Loader(file, text, backends)
    loader.watched[str(file)] = before
    return loader.project(data, dict(retarget or {}))


class _Loader:
    def __init__(
        self, file: Path, text: str, backends: Mapping[str, Backend] | None, *,
        top: _Loader | None = None,
    ) -> None:
        self.file = file
        self.root = file.parent
        self.root_str = str(self.root)
        self.origins = Origins(text)
        self.graph_dirs: set[str] = set()
        #: The stat data of the project file and of ``graph_dirs``, each taken before it was read.
        self.watched: dict[str, tuple[int, int, int, int] | None] = {}
        self._backends = backends
        #: The loader of the project file itself; included recipe files are read by their own
        #: loaders (for their own file:line), their paths rebased onto the top project's root.
        self.top = top or self
        #: Recipe files already read (resolved path → the file that included it first).
        self.loaded: dict[str, str] = {} if top is None else top.loaded
        #: What each of those files defines: its toolchains and packages.
        self.included: dict[str, tuple[dict[str, ToolchainSpec], dict[str, Package]]] = {}

    def backend(self, name: str, path: tuple[str, ...]) -> Backend:
        if self._backends is None:
            from .plugins._manager import backends, plugin_manager  # noqa: PLC0415

            self._backends = backends(plugin_manager())
        found = self._backends.get(name)
        if found is None:
            raise self.error(
                path, f"no backend named '{name}' is installed",
                hint="installed: " + (", ".join(sorted(self._backends)) or "none")
                + f" (install the ukbuild-{name} distribution)",
                reason="unknown-backend",
            )
        return found

    # --- errors and narrowing ----------------------------------------------

    def origin(self, path: tuple[str, ...]) -> Origin:
        return Origin(str(self.file), self.origins.line(path))

    def error(self, path: tuple[str, ...], message: str, *, hint: str, reason: str) -> ConfigError:
        return ConfigError(
            f"{self.origin(path)}: {'.'.join(path)}: {message}", hint=hint, reason=reason
        )

    def table(self, value: object, path: tuple[str, ...], known: set[str]) -> Mapping[str, object]:
        if not isinstance(value, dict):
            raise self.error(path, "expected a table", hint="write it as [section] or { … }", reason="bad-value")
        for name in value:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(sorted(known))
                raise self.error(path + (name,), "unknown field", hint=hint, reason="unknown-field")
        return value

    def string(self, value: object, path: tuple[str, ...]) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, got {_kind(value)}", hint='quote it: "…"', reason="bad-value")
        if "\0" in value:
            raise self.nul(path, value)
        return value

    def strings(self, value: object, path: tuple[str, ...]) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(
                path, f"expected a list of strings, got {_kind(value)}",
                hint='write it as ["a", "b"]', reason="bad-value",
            )
        for item in value:
            if "\0" in item:
                raise self.nul(path, item)
        return list(value)

    def nul(self, path: tuple[str, ...], value: str) -> ConfigError:
        """Commands, paths and the environment are C strings: a NUL would end them early
        (and the kernel refuses them)."""
        return self.error(path, f"{value!r} contains a NUL character",
                          hint="remove the \\u0000: program arguments, paths and environment variables cannot hold one",
                          reason="bad-value")

    def required(self, table: Mapping[str, object], key: str, path: tuple[str, ...]) -> object:
        if key not in table:
            raise self.error(path, f"missing required field '{key}'", hint=f"add {key} = …", reason="missing-field")
        return table[key]

    def name(self, value: str, path: tuple[str, ...]) -> str:
        if not _NAME.match(value):
            raise self.error(
                path, f"bad name {value!r}",
                hint="use letters, digits and . _ + - (not starting with punctuation)",
                reason="bad-name",
            )
        return value

    def relpath(self, value: str, path: tuple[str, ...], *, directory_ok: bool = True) -> str:
        """``value`` normalised as ``PurePosixPath`` would (``a//./b/`` → ``a/b/``), with
        string operations: this runs for every input of every action (10k-action projects)."""
        parts = value.split("/")
        if not value or value[0] == "/" or ".." in parts:
            raise self.error(
                path, f"{value!r} must be a relative path inside the project",
                hint="paths are relative to the project root and may not contain '..'",
                reason="bad-path",
            )
        if value.endswith("/") and not directory_ok:
            raise self.error(path, f"{value!r} must name a file", hint="drop the trailing '/'", reason="bad-path")
        normal = "/".join(p for p in parts if p and p != ".") or "."
        return normal + ("/" if value.endswith("/") else "")

    def output(self, value: str, path: tuple[str, ...]) -> str:
        """An action's output path: a relative path below the scratch root, not the root itself
        (its output directory would be the whole output dir, pruned to what it made)."""
        rel = self.relpath(value, path)
        if rel.rstrip("/") == ".":
            raise self.error(path, f"{value!r} is the whole scratch directory, not an output in it",
                             hint='declare the files and directories the action makes, e.g. "build/"',
                             reason="bad-path")
        return rel

    def exists(self, rel: str) -> bool:
        """Whether project path ``rel`` exists (as ``Path.exists``: a trailing ``/`` is ignored)."""
        return os.path.exists(os.path.join(self.root_str, rel.rstrip("/")))

    def watch(self, path: str) -> None:
        """Have the no-op check watch ``path`` (a recipe file, a directory a glob lists),
        with its stat data now: call it before reading ``path``."""
        top = self.top
        top.graph_dirs.add(path)
        if path not in top.watched:
            top.watched[path] = stat_of(path)

    def glob_files(self, pattern: str) -> list[str]:
        """The project files ``pattern`` matches.  Every directory the match depends on is
        watched (:meth:`listed_dirs`), each stat'ed before the listing the result comes from."""
        watched = self.top.watched
        for directory in self.listed_dirs(pattern):
            self.watch(directory)
        for _ in range(3):
            matches = sorted(glob.glob(pattern, root_dir=self.root, recursive=True))
            listed = self.listed_dirs(pattern)
            fresh = [d for d in listed if d not in watched]
            if not fresh:  # each one there now was stat'ed before the listing
                return matches
            for directory in fresh:
                self.watch(directory)
        for directory in listed:  # directories appear as fast as they are listed: vouch for none
            watched[directory] = UNKNOWN
        return matches

    def listed_dirs(self, pattern: str) -> list[str]:
        """The directories whose entries decide what ``pattern`` matches: its fixed base, and
        at each level from the first wildcard on, every directory matching so far (a file or
        directory added to one of them changes its stat data)."""
        parts = pattern.split("/")[:-1]
        found = {str(self.root / _glob_base(pattern))}
        magic = False
        for depth in range(1, len(parts) + 1):
            magic = magic or any(c in parts[depth - 1] for c in "*?[")
            if magic:
                prefix = "/".join(parts[:depth])
                found.update(os.path.normpath(os.path.join(self.root_str, d))
                             for d in glob.glob(prefix + "/", root_dir=self.root, recursive=True))
        return sorted(found)

    # --- sections -----------------------------------------------------------

    def project(self, data: Mapping[str, object], retarget: Mapping[str, str]) -> Project:
        self.table(data, (), _TOP)
        meta = self.table(data.get("project", {}), ("project",), _PROJECT)
        name = self.name(self.string(self.required(meta, "name", ("project",)), ("project", "name")), ("project", "name"))
        self.loaded[str(self.file.resolve())] = str(self.file)
        toolchains, packages_by_name = self.library(data, meta)
        actions: dict[str, Action] = {}
        groups: dict[str, list[str]] = {}
        raw_actions = data.get("action", {})
        tables: dict[str, str] = {}  # action → the [action.NAME] table it comes from
        for action_name, body in self.table(raw_actions, ("action",), set(raw_actions or ())).items():
            for action in self.actions(action_name, body, toolchains):
                actions[action.name] = action
                tables[action.name] = action_name
                groups.setdefault(action_name, []).append(action.name)
        packages = [self.retargeted(pkg, toolchains, retarget) for pkg in packages_by_name.values()]
        for pkg in packages:
            if pkg.name in groups:
                raise self.error(("package", pkg.name), "an action has the same name", hint="rename one of them", reason="duplicate-name")
            groups[pkg.name] = [pkg.name]
        for pkg in packages:
            for dep in pkg.depends:
                if dep not in {p.name for p in packages}:
                    raise ConfigError(
                        f"{pkg.origin}: package.{pkg.name}.depends: no package named '{dep}'",
                        hint=_suggest(dep, [p.name for p in packages]) + " (packages of other recipe files need"
                        " [project] include = [\"../DIR\"])", reason="unknown-dependency",
                    )
            for action in package_actions(pkg):
                if action.name in actions and action.name != pkg.name:
                    raise ConfigError(f"{pkg.origin}: package.{pkg.name}.native: its action '{action.name}' clashes with another",
                                      hint="rename one of them", reason="duplicate-name")
                actions[action.name] = action
                groups.setdefault(action.name, [action.name])
        unikernels = {}
        raw_unikernels = data.get("unikernel", {})
        for uk_name, body in self.table(raw_unikernels, ("unikernel",), set(raw_unikernels or ())).items():
            spec, planned = self.unikernel(uk_name, body, toolchains)
            if uk_name in groups:
                raise self.error(("unikernel", uk_name), "an action or package has the same name", hint="rename one of them", reason="duplicate-name")
            for action in planned:
                if action.name in actions:
                    raise self.error(("unikernel", uk_name), f"its action '{action.name}' clashes with another", hint="rename one of them", reason="duplicate-name")
                actions[action.name] = action
                groups[action.name] = [action.name]
            unikernels[uk_name] = spec
        images = {}
        raw_images = data.get("image", {})
        if raw_images:
            from .images import DATA_FORMATS, FORMATS, emit_toolchains, image_action  # noqa: PLC0415 - few projects have images
        for image_name, body in self.table(raw_images, ("image",), set(raw_images or ())).items():
            path = ("image", self.name(image_name, ("image", image_name)))
            table = self.table(body, path, set(body) if isinstance(body, dict) else set())
            if image_name in groups:
                raise self.error(path, "an action, package or unikernel has the same name", hint="rename one of them", reason="duplicate-name")
            fmt = table.get("format", "raw")
            if not isinstance(fmt, str) or fmt not in FORMATS:
                close = difflib.get_close_matches(fmt, list(FORMATS), n=1) if isinstance(fmt, str) else []
                raise self.error(
                    path + ("format",), f"unknown format {fmt!r}" if isinstance(fmt, str) else
                    f"expected a string, got {_kind(fmt)}",
                    hint=(f"did you mean '{close[0]}'? " if close else "") + 'format = "…", one of: ' + ", ".join(FORMATS),
                    reason="bad-value",
                )
            if table.get("format") in DATA_FORMATS:
                image, action = self.data_image(image_name, table, path)
                toolchains.update(emit_toolchains({image.format}, self.origin(path)))
                actions[image_name] = action
                groups[image_name] = [image_name]
                images[image_name] = image
                continue
            target = self.string(self.required(table, "unikernel", path), path + ("unikernel",))
            if target not in unikernels:
                close = difflib.get_close_matches(target, sorted(unikernels), n=1)
                raise self.error(
                    path + ("unikernel",), f"no unikernel named '{target}'"
                    + (" ('" + target + "' is an action or package: an image holds a unikernel)" if target in groups else ""),
                    hint=f"did you mean '{close[0]}'?" if close else
                    ("unikernels: " + ", ".join(sorted(unikernels)) if unikernels else
                     "this project declares none: add a [unikernel.NAME] table, or give format = \"ext2\" (or"
                     " iso9660, fat, ffs) and tree = \"dir/\" for a data image"),
                    reason="unknown-unikernel",
                )
            if image_name in groups:
                raise self.error(path, "an action, package or unikernel has the same name", hint="rename one of them", reason="duplicate-name")
            uk = unikernels[target]
            image_meta = self.backend(uk.backend, path).image_metadata(uk)
            image, action = image_action(image_name, table, image_meta, self.origin(path))
            toolchains.update(emit_toolchains({image.format}, self.origin(path)))
            actions[image_name] = action
            groups[image_name] = [image_name]
            images[image_name] = image
        actions = {n: self.resolve_deps(a, groups, actions) for n, a in actions.items()}
        check_graph(actions)
        self.check_outputs(actions, tables)
        default = self.strings(meta.get("default", []), ("project", "default"))
        for target in default:
            if target not in groups:
                raise self.unknown(("project", "default"), target, sorted(groups))
        return Project(
            name=name,
            root=str(self.root),
            actions=actions,
            platform=host_platform(),
            default_targets=tuple(a for t in default for a in groups[t]),
            files=(str(self.file), *sorted(self.graph_dirs)),
            file_stats=dict(self.watched),
            toolchains=toolchains,
            unikernels=unikernels,
            images=images,
        )

    def check_outputs(self, actions: Mapping[str, Action], tables: Mapping[str, str]) -> None:
        """No two actions write the same output path, or one inside the other's output directory:
        which one's file ended up in OUT would depend on the order of the targets.

        Except when one depends on the other (it passes on or adds to what it staged, as a
        backend's verify step re-declares the kernel it checked) or both are the same step
        (same command, inputs and environment, so the same key and bytes: two unikernels pulling
        the same duniverse entry)."""
        owners: dict[str, str] = {}
        for action in actions.values():
            for out in action.outputs:
                owners.setdefault(out.rstrip("/"), action.name)
        reached: dict[str, set[str]] = {}

        def related(a: str, b: str) -> bool:
            for x, y in ((a, b), (b, a)):
                if x not in reached:
                    reached[x] = closure(actions, [x])
                if y in reached[x]:
                    return True
            return False

        for action in actions.values():
            for out in action.outputs:
                rel = out.rstrip("/")
                parts = rel.split("/")
                for end in range(len(parts), 0, -1):  # the path itself, then each directory holding it
                    where = "/".join(parts[:end])
                    other = owners.get(where)
                    if other is None or other == action.name or related(action.name, other):
                        continue
                    if attrs.evolve(actions[other], name=action.name) == action:
                        continue
                    theirs = next(o for o in actions[other].outputs if o.rstrip("/") == where)
                    what = (f"{out!r} is also an output of action '{other}'" if where == rel
                            else f"{out!r} lies inside {theirs!r}, an output of action '{other}'")
                    hint = (f"give each action its own output paths, or make '{action.name}' depend on '{other}'"
                            " if it is meant to replace or add to that output (otherwise which one ends up in"
                            " the output directory depends on the order of the targets)")
                    if action.name in tables:
                        raise self.error(("action", tables[action.name], "outputs"),
                                         f"{what} ({actions[other].origin})", hint=hint, reason="output-conflict")
                    raise ConfigError(f"{action.origin}: {action.name}: outputs: {what} ({actions[other].origin})",
                                      hint=hint, reason="output-conflict")

    def library(self, data: Mapping[str, object], meta: Mapping[str, object]) -> tuple[dict[str, ToolchainSpec], dict[str, Package]]:
        """This file's toolchains and packages, after those of the recipe files it includes."""
        toolchains = {DEFAULT_TOOLCHAIN: ToolchainSpec(DEFAULT_TOOLCHAIN, DEFAULT_HOST_TOOLS, Origin(str(self.file)))}
        packages: dict[str, Package] = {}
        includes = self.strings(meta.get("include", []), ("project", "include"))
        for index, rel in enumerate(includes):
            self.include(rel, ("project", "include"), index, toolchains, packages)
        raw_toolchains = data.get("toolchain", {})
        for tc_name, tc in self.table(raw_toolchains, ("toolchain",), set(raw_toolchains or ())).items():
            path = ("toolchain", self.name(tc_name, ("toolchain", tc_name)))
            if isinstance(tc, dict) and "backend" in tc:
                backend_name = self.string(tc["backend"], path + ("backend",))
                backend = self.backend(backend_name, path + ("backend",))
                options = {k: v for k, v in tc.items() if k != "backend"}
                self.table(options, path, set(backend.TOOLCHAIN_OPTIONS))
                spec = ToolchainSpec(tc_name, (), self.origin(path), backend_name, options)
            else:
                body = self.table(tc, path, _TOOLCHAIN)
                tools = self.strings(body.get("tools", list(DEFAULT_HOST_TOOLS)), path + ("tools",))
                spec = ToolchainSpec(tc_name, tools, self.origin(path + ("tools",)))
            self.merge_toolchain(spec, toolchains, path)
        raw_packages = data.get("package", {})
        for pkg_name, body in self.table(raw_packages, ("package",), set(raw_packages or ())).items():
            pkg = self.package(pkg_name, body, toolchains)
            if pkg.name in packages:
                raise self.error(
                    ("package", pkg.name), f"already defined in {packages[pkg.name].origin}",
                    hint="a package is defined in one recipe file; include that file instead of repeating it",
                    reason="duplicate-name",
                )
            packages[pkg.name] = pkg
        return toolchains, packages

    def merge_toolchain(self, spec: ToolchainSpec, toolchains: dict[str, ToolchainSpec], path: tuple[str, ...]) -> None:
        known = toolchains.get(spec.name)
        same = known is not None and (known.backend, known.tools, dict(known.options)) == (spec.backend, spec.tools, dict(spec.options))
        if known is not None and not same and known.origin.file != str(self.file) and spec.name != DEFAULT_TOOLCHAIN:
            raise self.error(
                path, f"differs from the toolchain of the same name in {known.origin}",
                hint="recipe files that include each other must declare a shared toolchain the same way",
                reason="toolchain-conflict",
            )
        toolchains[spec.name] = spec

    def include(
        self, rel: str, path: tuple[str, ...], index: int,
        toolchains: dict[str, ToolchainSpec], packages: dict[str, Package],
    ) -> None:
        """Read a recipe file (a directory holding ukbuild.toml, or a file), relative to this one."""
        target = self.root / rel
        candidate = target / PROJECT_FILE if target.is_dir() else target
        if PurePosixPath(rel).is_absolute() or not candidate.is_file():
            raise self.error(
                path, f"{rel!r}: no recipe file there ({candidate})",
                hint='name a recipe directory or file relative to this file, e.g. include = ["../zlib"]',
                reason="missing-input",
            )
        resolved = str(candidate.resolve())
        self.watch(os.path.normpath(candidate.absolute()))  # watched by the no-op check
        if resolved in self.loaded and resolved not in self.top.included:
            raise self.error(
                path, f"{rel!r} includes a file that is being read ({candidate}): an include cycle",
                hint="recipe files may include each other only one way; move the shared packages to their own file",
                reason="include-cycle",
            )
        if resolved in self.loaded:
            sub_toolchains, sub_packages = self.top.included[resolved]
        else:
            self.loaded[resolved] = str(self.file)
            data, text = read_toml(candidate.absolute())
            sub = _Loader(Path(os.path.normpath(candidate.absolute())), text, self._backends, top=self.top)
            sub.table(data, (), _TOP)
            meta = sub.table(data.get("project", {}), ("project",), _PROJECT)
            sub_toolchains, sub_packages = sub.library(data, meta)
            self.top.included[resolved] = (sub_toolchains, sub_packages)
        for spec in sub_toolchains.values():
            if spec.name != DEFAULT_TOOLCHAIN or DEFAULT_TOOLCHAIN not in toolchains:
                self.merge_toolchain(spec, toolchains, path)
        for pkg in sub_packages.values():
            known = packages.get(pkg.name)
            if known is not None and known is not pkg:
                raise self.error(
                    path, f"{rel!r} defines package '{pkg.name}', already defined in {known.origin}",
                    hint="define each package in one recipe file and include that file everywhere",
                    reason="duplicate-name",
                )
            packages[pkg.name] = pkg

    def retargeted(self, pkg: Package, toolchains: Mapping[str, ToolchainSpec], retarget: Mapping[str, str]) -> Package:
        name = retarget.get(pkg.toolchain or DEFAULT_TOOLCHAIN)
        if name is not None:
            if name not in toolchains:
                raise ConfigError(f"retarget: no toolchain named '{name}'", hint="known: " + ", ".join(sorted(toolchains)), reason="unknown-toolchain")
            pkg = attrs.evolve(pkg, toolchain=name)
            if pkg.native is not None and (pkg.native.toolchain or DEFAULT_TOOLCHAIN) in retarget:
                pkg = attrs.evolve(pkg, native=attrs.evolve(pkg.native, toolchain=retarget[pkg.native.toolchain or DEFAULT_TOOLCHAIN]))
        spec = toolchains.get(pkg.toolchain or DEFAULT_TOOLCHAIN)
        if pkg.configure_answers and (spec is None or spec.backend is None):
            pkg = attrs.evolve(pkg, configure_answers=())  # answers are for cross builds only
        return pkg

    def rebase(self, rel: str) -> str:
        """A path of this file's directory, relative to the top project's root (may use '..')."""
        if self.top is self:
            return rel
        return os.path.relpath(os.path.normpath(self.root / rel), self.top.root)

    def data_image(self, name: str, table: Mapping[str, object], path: tuple[str, ...]) -> tuple[ImageSpec, Action]:
        for field in ("tree",):
            value = table.get(field)
            if isinstance(value, str) and value and not PurePosixPath(value).is_absolute() and ".." not in PurePosixPath(value).parts:
                if not (self.root / value).is_dir():
                    raise self.error(path + (field,), f"{value!r} is not a directory of the project",
                                     hint=f"create {value} (the image's content) or fix the path", reason="missing-input")
        files = table.get("files", {})
        if isinstance(files, dict):
            for image_path, value in files.items():
                if isinstance(value, str) and not (self.root / value).is_file():
                    raise self.error(path + ("files", image_path), f"{value!r} is not a file of the project",
                                     hint="create it or fix the path (paths are relative to the project root)",
                                     reason="missing-input")
        from .images import data_image_action  # noqa: PLC0415

        return data_image_action(name, table, self.origin(path))

    def unikernel(self, name: str, body: object, toolchains: Mapping[str, ToolchainSpec]) -> tuple[UnikernelSpec, list[Action]]:
        path = ("unikernel", self.name(name, ("unikernel", name)))
        table = self.table(body, path, set(body) if isinstance(body, dict) else set())
        tc_name = self.string(self.required(table, "toolchain", path), path + ("toolchain",))
        spec_tc = toolchains.get(tc_name)
        if spec_tc is None or spec_tc.backend is None:
            raise self.error(
                path + ("toolchain",), f"'{tc_name}' is not a backend toolchain",
                hint=f'declare [toolchain.{tc_name}] with backend = "…"', reason="unknown-toolchain",
            )
        backend = self.backend(spec_tc.backend, path + ("toolchain",))
        from .plugins import UnikernelSpec  # noqa: PLC0415 - only projects with unikernels

        spec = UnikernelSpec(
            name=name, backend=spec_tc.backend, toolchain=tc_name,
            options={k: v for k, v in table.items() if k != "toolchain"},
            origin=self.origin(path), project_root=str(self.root),
        )
        backend.check_options(spec)
        planned = list(backend.plan(spec))
        if not planned or planned[-1].name != name:
            raise ConfigError(f"backend {backend.NAME} planned no action named '{name}'", reason="bad-plan")
        for action in planned:
            for item in action.inputs:
                if isinstance(item, PathInput) and not self.exists(item.path):
                    raise self.error(path, f"{item.path!r} does not exist", hint="create it or fix the path", reason="missing-input")
        return spec, planned

    def unknown(self, path: tuple[str, ...], name: str, known: list[str]) -> ConfigError:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "known: " + (", ".join(sorted(known)) or "none")
        return self.error(path, f"no action or package named '{name}'", hint=hint, reason="unknown-dependency")

    def actions(self, name: str, body: object, toolchains: Mapping[str, object]) -> list[Action]:
        path = ("action", self.name(name, ("action", name)))
        table = self.table(body, path, _ACTION)
        command = self.strings(self.required(table, "command", path), path + ("command",))
        if not command:
            raise self.error(path + ("command",), "is empty", hint="give the program and its arguments", reason="bad-value")
        outputs = self.strings(self.required(table, "outputs", path), path + ("outputs",))
        if not outputs:
            raise self.error(path + ("outputs",), "is empty", hint="declare at least one output path", reason="bad-value")
        toolchain = self.string(table.get("toolchain", DEFAULT_TOOLCHAIN), path + ("toolchain",))
        if toolchain not in toolchains:
            raise self.error(
                path + ("toolchain",), f"no toolchain named '{toolchain}'",
                hint="declare it as [toolchain." + toolchain + "] or use 'host'", reason="unknown-toolchain",
            )
        env = self.env(table.get("env", {}), path + ("env",))
        workdir = self.string(table.get("workdir", ""), path + ("workdir",))
        if workdir:
            workdir = self.relpath(workdir, path + ("workdir",)).rstrip("/")
        salt = self.string(table.get("salt", ""), path + ("salt",))
        network = table.get("network", False)
        if not isinstance(network, bool):
            raise self.error(path + ("network",), f"expected a boolean, got {_kind(network)}",
                             hint="network = true for a step that must fetch", reason="bad-value")
        rootfs = self.dep(table["rootfs"], path + ("rootfs",)) if "rootfs" in table else None
        if rootfs is not None and rootfs.dest:
            raise self.error(path + ("rootfs", "at"), "a root file system is mounted at /",
                             hint='rootfs = { action = "debian-root", path = "rootfs" }', reason="bad-value")
        if rootfs is not None and "toolchain" in table:
            raise self.error(path + ("toolchain",), "an action with a rootfs runs the root's own tools",
                             hint="remove toolchain (or rootfs)", reason="bad-value")
        inputs = self.strings(table.get("inputs", []), path + ("inputs",))
        deps = table.get("deps", [])
        if not isinstance(deps, list):
            raise self.error(path + ("deps",), f"expected a list, got {_kind(deps)}", hint='deps = ["other-action"]', reason="bad-value")
        dependencies: list[OutputInput] = []
        seen: set[OutputInput] = set()
        for dep in deps:
            item = self.dep(dep, path + ("deps",))
            if item in seen:
                raise self.error(path + ("deps",), f"{_describe(item)} is listed twice",
                                 hint="remove one (to stage the same outputs a second time, put them elsewhere:"
                                 f" {{ action = \"{item.action}\", at = \"dir\" }})", reason="duplicate-dependency")
            dependencies.append(item)
            seen.add(item)
        expansions: list[tuple[str, dict[str, str]]] = [(name, {})]
        if "foreach" in table:
            pattern = self.relpath(self.string(table["foreach"], path + ("foreach",)), path + ("foreach",))
            matches = self.glob_files(pattern)
            if not matches:
                raise self.error(path + ("foreach",), f"{pattern!r} matches no file", hint="check the pattern against the project tree", reason="bad-value")
            expansions = [(f"{name}[{subst['stem']}]", subst) for subst in map(_placeholders, matches)]
            first_match: dict[str, str] = {}
            for action_name, subst in expansions:
                other = first_match.setdefault(action_name, subst["in"])
                if other != subst["in"]:
                    raise self.error(
                        path + ("foreach",), f"{other!r} and {subst['in']!r} would both be action '{action_name}'",
                        hint=f"each match becomes {name}[STEM]: rename one of the files, or split the action into"
                        f" one per directory with narrower globs (e.g. foreach = \"{_placeholders(other)['dir']}/{pattern.rstrip('/').rpartition('/')[2]}\")",
                        reason="duplicate-name",
                    )
        result = []
        for action_name, subst in expansions:
            def fill(text: str, field: str, subst: dict[str, str] = subst) -> str:
                try:
                    return text.format_map(subst) if subst else text
                except (KeyError, ValueError, IndexError, AttributeError, TypeError) as exc:
                    raise self.error(
                        path + (field,), f"bad placeholder in {text!r}: {exc}",
                        hint="use {in}, {stem}, {name} or {dir} with foreach; write {{ }} for literal braces",
                        reason="bad-value",
                    ) from exc
            staged: list[Input] = []
            for raw in inputs:
                rel = self.relpath(fill(raw, "inputs"), path + ("inputs",))
                if not self.exists(rel):
                    raise self.error(path + ("inputs",), f"{rel!r} does not exist", hint="create it or fix the path", reason="missing-input")
                staged.append(PathInput(rel.rstrip("/"), rel.rstrip("/")))
            staged.extend(dependencies)
            result.append(
                Action(
                    name=action_name,
                    argv=[fill(a, "command") for a in command],
                    outputs=[self.output(fill(o, "outputs"), path + ("outputs",)) for o in outputs],
                    inputs=staged,
                    env=env,
                    toolchain=toolchain,
                    workdir=workdir,
                    salt=salt,
                    network=network,
                    rootfs=rootfs,
                    origin=self.origin(path),
                )
            )
        return result

    def dep(self, dep: object, path: tuple[str, ...]) -> OutputInput:
        if isinstance(dep, str):
            return OutputInput(dep)
        if not isinstance(dep, dict):
            raise self.error(
                path, f"expected an action name or a table, got {_kind(dep)}",
                hint='write "other-action", or { action = "…", path = "…", at = "…" } to stage one of its'
                " output directories (path) somewhere else (at)", reason="bad-value",
            )
        table = self.table(dep, path, _DEP)
        action = self.string(self.required(table, "action", path), path + ("action",))
        at = self.string(table.get("at", ""), path + ("at",))
        sub = self.string(table.get("path", ""), path + ("path",))
        return OutputInput(
            action,
            self.relpath(at, path + ("at",)).rstrip("/") if at else "",
            self.relpath(sub, path + ("path",)).rstrip("/") if sub else "",
        )

    def resolve_deps(self, action: Action, groups: Mapping[str, list[str]], actions: Mapping[str, Action]) -> Action:
        """Expand a dependency on a foreach group to one input per member; check what can be
        known before running: each member listed once, and ``path`` naming its outputs."""
        def members(item: OutputInput, field: str) -> list[str]:
            found = groups.get(item.action) or ([item.action] if item.action in _all(groups) else None)
            if found is None:
                raise ConfigError(
                    f"{action.origin}: {action.name}: {field}: no action or package named '{item.action}'",
                    hint=_suggest(item.action, list(groups)),
                    reason="unknown-dependency",
                )
            return found

        inputs: list[Input] = []
        listed: dict[OutputInput, OutputInput] = {}  # expanded → as written
        for item in action.inputs:
            if isinstance(item, OutputInput):
                for member in members(item, "deps"):
                    expanded = OutputInput(member, item.dest, item.path)
                    first = listed.setdefault(expanded, item)
                    if first is not item:
                        raise ConfigError(
                            f"{action.origin}: {action.name}: deps: {_describe(expanded)} is listed twice"
                            f" (as {_describe(first)} and as {_describe(item)})",
                            hint="remove one (a foreach group's name stands for all of its actions)",
                            reason="duplicate-dependency",
                        )
                    self.check_dep_path(action, expanded, actions.get(member), "deps")
                    inputs.append(expanded)
            else:
                inputs.append(item)
        if action.rootfs is not None and members(action.rootfs, "rootfs") != [action.rootfs.action]:
            raise ConfigError(f"{action.origin}: {action.name}: rootfs: '{action.rootfs.action}' is a foreach group",
                              hint="name one action", reason="bad-value")
        if action.rootfs is not None:
            self.check_dep_path(action, action.rootfs, actions.get(action.rootfs.action), "rootfs")
        return attrs.evolve(action, inputs=inputs)

    def check_dep_path(self, action: Action, item: OutputInput, producer: Action | None, field: str) -> None:
        """``path`` must name an output of the producer, a path inside one of its output
        directories (found when it runs) or a directory holding outputs; a file output only with
        ``at`` (the file is staged as that path)."""
        if not item.path or producer is None:
            return
        where = f"{action.origin}: {action.name}: {field}"
        files = {o for o in producer.outputs if not o.endswith("/")}
        if item.path in files and (field == "rootfs" or not item.dest):
            raise ConfigError(
                f"{where}: '{item.path}' is a file output of '{item.action}'"
                + (", not a directory" if field == "rootfs" else " (path stages the content of a directory)"),
                hint=("a root file system is one of its output directories" if field == "rootfs" else
                      f'list "{item.action}" to stage all its outputs at their own paths, or add at = "NAME"'
                      " to stage this one file as NAME"),
                reason="bad-dependency-path",
            )

        def related(out: str) -> bool:  # the output itself, a directory holding it, or a path inside it
            top = out.rstrip("/")
            return item.path == top or top.startswith(item.path + "/") or (
                out.endswith("/") and item.path.startswith(out))

        if not any(related(out) for out in producer.outputs):
            shown = ", ".join(repr(o) for o in producer.outputs)
            raise ConfigError(
                f"{where}: '{item.action}' has no output '{item.path}'",
                hint=f"its outputs are {shown}: name one of them, a path inside an output directory, or a directory"
                " holding outputs",
                reason="bad-dependency-path",
            )

    def env(self, value: object, path: tuple[str, ...], *, example: str = 'env = { CFLAGS = "-O2" }') -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a table of strings, got {_kind(value)}", hint=example, reason="bad-value")
        for key, item in value.items():
            if not key or "=" in key or "\0" in key:
                raise self.error(path, f"{key!r} is not an environment variable name",
                                 hint="a name is not empty and holds no '=' or NUL (e.g. CFLAGS)", reason="bad-value")
            self.string(item, path + (key,))
            if key in _SET_BY_UKBUILD:
                raise self.error(path + (key,), f"{key} is set by ukbuild for every action and cannot be changed",
                                 hint=_SET_BY_UKBUILD[key], reason="reserved-env")
        return dict(value)

    def package(self, name: str, body: object, toolchains: Mapping[str, object]) -> Package:
        path = ("package", self.name(name, ("package", name)))
        table = self.table(body, path, _PACKAGE)
        steps = self.strings(self.required(table, "steps", path), path + ("steps",))
        toolchain = self.string(table.get("toolchain", DEFAULT_TOOLCHAIN), path + ("toolchain",))
        if toolchain not in toolchains:
            raise self.error(path + ("toolchain",), f"no toolchain named '{toolchain}'", hint="declare it as [toolchain." + toolchain + "]", reason="unknown-toolchain")
        answers = self.env(table.get("configure_answers", {}), path + ("configure_answers",),
                           example='configure_answers = { ac_cv_func_fork = "no" }')
        for key in answers:
            if not _ENV_NAME.match(key):
                raise self.error(path + ("configure_answers", key), "not a variable name",
                                 hint="answers are exported as environment variables: letters, digits and _",
                                 reason="bad-value")
        stubs = []
        for stub in self.strings(table.get("stubs", []), path + ("stubs",)):
            rel = self.relpath(stub, path + ("stubs",), directory_ok=False)
            if not rel.endswith((".c", ".cc", ".h")):
                raise self.error(path + ("stubs",), f"{rel!r} is not a C or C++ source or header (.c, .cc, .h)",
                                 hint="each stub X.c is compiled into stubs/X.o and stubs/libX.a; headers are staged beside them",
                                 reason="bad-value")
            if not (self.root / rel).is_file():
                raise self.error(path + ("stubs",), f"stub {rel!r} not found",
                                 hint="stub paths are relative to the recipe file's directory", reason="missing-input")
            stubs.append((PurePosixPath(rel).name, os.path.normpath(self.root / rel)))
        if len({n for n, _ in stubs}) != len(stubs):
            raise self.error(path + ("stubs",), "two stubs have the same file name", hint="rename one", reason="bad-value")
        targets = self.strings(table.get("targets", []), path + ("targets",))
        native = None
        if "native" in table:
            npath = path + ("native",)
            ntable = self.table(table["native"], npath, _NATIVE)
            ntool = self.string(ntable.get("toolchain", DEFAULT_TOOLCHAIN), npath + ("toolchain",))
            if ntool not in toolchains:
                raise self.error(npath + ("toolchain",), f"no toolchain named '{ntool}'",
                                 hint=f'declare [toolchain.{ntool}] with the host tools it runs, or use "host"',
                                 reason="unknown-toolchain")
            if getattr(toolchains[ntool], "backend", None) is not None:
                raise self.error(npath + ("toolchain",), f"'{ntool}' is a backend (cross) toolchain",
                                 hint="the native stage builds helper programs that run on the build host", reason="bad-value")
            native = NativeStage(
                steps=self.strings(self.required(ntable, "steps", npath), npath + ("steps",)),
                toolchain=ntool, env=self.env(ntable.get("env", {}), npath + ("env",)),
            )
        return Package(
            name=name,
            version=self.string(table.get("version", ""), path + ("version",)),
            source=self.source(self.required(table, "source", path), path + ("source",)),
            steps=steps,
            depends=self.strings(table.get("depends", []), path + ("depends",)),
            toolchain=toolchain,
            env=self.env(table.get("env", {}), path + ("env",)),
            origin=self.origin(path),
            configure_answers=answers,
            stubs=stubs,
            targets=targets,
            native=native,
        )

    def source(self, value: object, path: tuple[str, ...]) -> Source:
        if isinstance(value, dict) and "path" in value:
            table = self.table(value, path, _LOCAL)
            rel = self.relpath(self.string(table["path"], path + ("path",)), path + ("path",)).rstrip("/")
            if not (self.root / rel).is_dir():
                raise self.error(path + ("path",), f"{rel!r} is not a directory", hint="point it at the source tree", reason="missing-input")
            return LocalSource(self.rebase(rel), self.patches(table, path))
        table = self.table(value, path, _ARCHIVE)
        url = self.string(self.required(table, "url", path), path + ("url",))
        sha256 = self.string(self.required(table, "sha256", path), path + ("sha256",)).lower()
        if not _SHA256.match(sha256):
            raise self.error(
                path + ("sha256",), f"{sha256!r} is not a sha256",
                hint="write the 64 hex digits that `sha256sum ARCHIVE` prints", reason="bad-sha256",
            )
        strip = table.get("strip", 1)
        if not isinstance(strip, int) or isinstance(strip, bool) or strip < 0:
            raise self.error(path + ("strip",), "expected a non-negative integer", hint="strip = 1", reason="bad-value")
        return ArchiveSource(url, sha256, strip, self.patches(table, path))

    def patches(self, table: Mapping[str, object], path: tuple[str, ...]) -> tuple[str, ...]:
        patches = self.strings(table.get("patches", []), path + ("patches",))
        for patch in patches:
            rel = self.relpath(patch, path + ("patches",), directory_ok=False)
            if not (self.root / rel).is_file():
                raise self.error(path + ("patches",), f"patch {rel!r} not found", hint="patch paths are relative to the project root", reason="missing-input")
        return tuple(self.rebase(p) for p in patches)


def _all(groups: Mapping[str, list[str]]) -> set[str]:
    return {m for members in groups.values() for m in members}


def _describe(item: OutputInput) -> str:
    """A dependency as the user wrote it."""
    if not item.dest and not item.path:
        return f"'{item.action}'"
    fields = [f'action = "{item.action}"'] + [f'{k} = "{v}"' for k, v in (("path", item.path), ("at", item.dest)) if v]
    return "{ " + ", ".join(fields) + " }"


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean '{close[0]}'?" if close else "known: " + (", ".join(sorted(known)) or "none")


def _placeholders(match: str) -> dict[str, str]:
    """``{in}``, ``{stem}``, ``{name}``, ``{dir}`` of a glob match, as ``PurePosixPath`` has them
    (by string operations: a 10k-action ``foreach`` calls this 10,000 times)."""
    parent, _, name = match.rstrip("/").rpartition("/")
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    return {"in": match, "stem": stem, "name": name, "dir": parent or "."}


def _glob_base(pattern: str) -> str:
    parts = []
    for part in PurePosixPath(pattern).parts:
        if any(c in part for c in "*?["):
            break
        parts.append(part)
    return "/".join(parts[:-1] if len(parts) == len(PurePosixPath(pattern).parts) else parts)


def _kind(value: object) -> str:
    return {str: "a string", int: "an integer", float: "a float", bool: "a boolean", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )

