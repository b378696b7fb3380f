"""Frozen value classes: what a project declares, before anything runs.

A project is a set of :class:`Action` nodes (and :class:`Package` recipes
that expand into actions).  Values here are pure data; the key contribution
of each is spelled out by ``to_key()`` so that adding a field can never
change keys silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeAlias

import attrs

from .keys import KeyValue

if TYPE_CHECKING:  # specs of the plugin and image layers, which import this module
    from .images import ImageSpec
    from .plugins import UnikernelSpec

#: Where an action runs relative to its scratch root; the logical build path.
LOGICAL_WORKDIR = "/ukbuild/work"


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _inputs(value: Iterable[Input]) -> tuple[Input, ...]:
    return tuple(value)


def _checks(value: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(output), str(check)) for output, check in value)


def _tools(value: Iterable[Tool]) -> tuple[Tool, ...]:
    return tuple(value)


def _pairs(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), str(v)) for k, v in items))


@attrs.frozen
class Origin:
    """Where a value was declared, for error messages (never part of a key)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


NO_ORIGIN = Origin("<python>")


@attrs.frozen
class Platform:
    """The three platform roles, spelled out (Nix and Meson keep them apart too)."""

    build: str
    host: str
    target: str

    def to_key(self) -> dict[str, KeyValue]:
        return {"build": self.build, "host": self.host, "target": self.target}


@attrs.frozen
class Tool:
    """One program of a toolchain; ``path`` is where it is here, never part of a key."""

    name: str
    path: str
    version: str
    digest: str

    def to_key(self) -> dict[str, KeyValue]:
        return {"version": self.version, "digest": self.digest}


@attrs.frozen
class Toolchain:
    """A set of tools whose identity (versions and digests) enters every key that uses it.

    ``prefix`` is the install prefix for toolchains that embed it (Rumprun's
    is not relocatable), so it is configuration and belongs in the key; the
    host toolchain has none.  ``search_path`` is the PATH actions get;
    ``env`` the cross-compile environment a backend gives every action that
    uses the toolchain (CC, AR, the ``--host`` triple, configure answers…).
    """

    name: str
    tools: tuple[Tool, ...] = attrs.field(converter=_tools)
    search_path: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    prefix: str | None = None
    extra: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())
    compilers: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    env: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())
    backend: str | None = None
    launchers: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    #: Files that identify the toolchain besides its tools (a bake configuration,
    #: sysroot libraries): path → digest; the digests enter keys, the paths are
    #: watched by the no-op check.
    files: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def to_key(self) -> dict[str, KeyValue]:
        doc: dict[str, KeyValue] = {
            "name": self.name,
            "tools": {t.name: t.to_key() for t in self.tools},
        }
        if self.prefix is not None:
            doc["prefix"] = self.prefix
        if self.extra:
            doc["extra"] = dict(self.extra)
        if self.env:
            doc["env"] = dict(self.env)
        if self.backend is not None:
            doc["backend"] = self.backend
        if self.files:
            doc["files"] = sorted(digest for _path, digest in self.files)
        return doc


# --- sources ----------------------------------------------------------------


@attrs.frozen
class ArchiveSource:
    """A pinned upstream archive; only its declared sha256 enters keys (fixed output)."""

    url: str
    sha256: str
    strip: int = 1
    patches: tuple[str, ...] = attrs.field(converter=_tuple, default=())


@attrs.frozen
class LocalSource:
    """A directory of the project (or a local override), keyed by its content."""

    path: str
    patches: tuple[str, ...] = attrs.field(converter=_tuple, default=())


@attrs.frozen
class FileSource:
    """One file, local (``path``) or pinned remote (``url`` + ``sha256``)."""

    path: str | None = None
    url: str | None = None
    sha256: str | None = None


Source: TypeAlias = ArchiveSource | LocalSource | FileSource


# --- actions ----------------------------------------------------------------


@attrs.frozen
class PathInput:
    """A file or directory of the project checkout, staged at ``dest`` (default: same path)."""

    path: str
    dest: str

    @property
    def label(self) -> str:
        return f"path:{self.path}" if self.path == self.dest else f"path:{self.path}@{self.dest}"


@attrs.frozen
class OutputInput:
    """The outputs of another action, staged under ``dest`` ("" = at their own paths).

    With ``path`` (one of that action's output directories) only that
    directory's content is staged, at ``dest``: how a package's install tree
    becomes part of a dependant's sysroot.
    """

    action: str
    dest: str = ""
    path: str = ""

    @property
    def label(self) -> str:
        label = f"out:{self.action}"
        if self.path:
            label += f":{self.path}"
        return label + (f"@{self.dest}" if self.dest else "")


@attrs.frozen
class SourceInput:
    """A fetched, verified, extracted and patched source tree, staged at ``dest``."""

    name: str
    source: Source
    dest: str

    @property
    def label(self) -> str:
        return f"src:{self.name}@{self.dest}"


@attrs.frozen
class ExternalInput:
    """Files shipped outside the project (a backend's runtime sources), staged at ``dest``.

    Keyed by content under ``label`` (e.g. ``multiboot-runtime``), never by
    ``path``, which differs between installations.
    """

    path: str
    dest: str
    label_name: str

    @property
    def label(self) -> str:
        return f"ext:{self.label_name}@{self.dest}"


Input: TypeAlias = PathInput | OutputInput | SourceInput | ExternalInput


@attrs.frozen
class Action:
    """One cacheable step: a command run in a scratch dir holding only its inputs.

    ``outputs`` are paths relative to the scratch root; a trailing ``/``
    declares a directory.  ``env`` is the whole environment besides what the
    executor sets itself (PATH from the toolchain, ``SOURCE_DATE_EPOCH``,
    ``LC_ALL=C``, ``TZ=UTC``, ``HOME``, ``UKBUILD_WORK``); ``${UKBUILD_WORK}``
    in argv or env stands for the scratch root and is expanded at run time.

    ``network`` marks a step that must fetch (a package manager's lock or pull):
    it keeps the host's network under ``--sandbox`` and is refused by an
    offline build when it is not already cached.  Its result is cached like any
    other, so what it fetched is fetched once.

    ``rootfs`` pins the build environment: the command runs under bubblewrap
    with that dependency's output directory (a debootstrap tree, an unpacked
    OCI image) as its root file system, using the tools inside it, and the
    tree's digest enters the key — how an old toolchain keeps building on a new
    host.
    """

    name: str
    argv: tuple[str, ...] = attrs.field(converter=_tuple)
    outputs: tuple[str, ...] = attrs.field(converter=_tuple)
    inputs: tuple[Input, ...] = attrs.field(converter=_inputs, default=())
    env: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())
    toolchain: str | None = None
    workdir: str = ""
    step: str = "core/run"
    step_version: int = 1
    config: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())
    salt: str = ""
    checks: tuple[tuple[str, str], ...] = attrs.field(converter=_checks, default=())
    network: bool = False
    rootfs: OutputInput | None = None
    origin: Origin = attrs.field(default=NO_ORIGIN, eq=False)

    @property
    def dependencies(self) -> tuple[str, ...]:
        staged = tuple(i.action for i in self.inputs if isinstance(i, OutputInput))
        return (*staged, self.rootfs.action) if self.rootfs else staged


@attrs.frozen
class ToolchainSpec:
    """What a project asks of a toolchain: the host tools it must have, or a backend
    (with that backend's options) that detects it."""

    name: str
    tools: tuple[str, ...] = attrs.field(converter=_tuple)
    origin: Origin = attrs.field(default=NO_ORIGIN, eq=False)
    backend: str | None = None
    options: Mapping[str, object] = attrs.field(factory=dict, eq=False)
    #: ukbuild's own programs (e.g. ``ukbuild-emit``) the actions may run.
    launchers: tuple[str, ...] = attrs.field(converter=_tuple, default=())


@attrs.frozen
class Project:
    """A loaded project: its actions by name, and where it lives (never part of a key)."""

    name: str
    root: str
    actions: Mapping[str, Action]
    platform: Platform
    default_targets: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    files: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    toolchains: Mapping[str, ToolchainSpec] = attrs.field(factory=dict)
    unikernels: Mapping[str, UnikernelSpec] = attrs.field(factory=dict)
    images: Mapping[str, ImageSpec] = attrs.field(factory=dict)
    #: The stat data of ``files`` taken before they were read — (mtime ns, ctime ns, size,
    #: inode), None when missing — for the no-op record: an edit made while the project
    #: was loaded or built is seen by the next build.  Files without are stat'ed when the
    #: build starts.
    file_stats: Mapping[str, tuple[int, int, int, int] | None] = attrs.field(factory=dict, eq=False)


@attrs.frozen
class NativeStage:
    """A package's host build that feeds its cross build (helper programs the build runs).

    It becomes its own action, ``NAME.native``, built from the same source with
    ``toolchain`` (a host toolchain); what its steps install under ``$DESTDIR``
    is staged into the cross build at ``native/`` (``$NATIVE``).
    """

    steps: tuple[str, ...] = attrs.field(converter=_tuple)
    toolchain: str | None = None
    env: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())


@attrs.frozen
class Package:
    """A recipe: a source built by ordered shell steps into ``install/``.

    It expands into one action (two with a ``native`` stage).  Dependencies'
    install trees are staged, merged, under ``sysroot/``; the steps see
    ``$DESTDIR``, ``$PREFIX`` (fixed: ``/usr``), ``$SYSROOT`` and pkg-config
    pointed into the sysroot, so no absolute build path reaches what is installed.

    ``configure_answers`` are configure results a cross build cannot compute
    (exported to the steps, and as a CMake preload file); ``stubs`` are
    (name, absolute path) pairs of C sources compiled into ``stubs/`` before
    the steps; ``targets`` the build-system targets the steps build.
    """

    name: str
    source: Source
    steps: tuple[str, ...] = attrs.field(converter=_tuple)
    version: str = ""
    depends: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    toolchain: str | None = None
    env: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())
    origin: Origin = attrs.field(default=NO_ORIGIN, eq=False)
    configure_answers: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())
    stubs: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, default=())
    targets: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    native: NativeStage | None = None
