"""The plugin API: how a toolchain backend plugs into ukbuild.

Writing a backend (see ``docs/backends.md`` for the full guide)
---------------------------------------------------------------

A backend is a normal Python distribution (``ukbuild-<name>``, imported as
``ukbuild_<name>``) with an entry point in the ``ukbuild`` group::

    [project.entry-points.ukbuild]
    mybackend = "ukbuild_mybackend.plugin"

whose module implements the one hook::

    from ukbuild.plugins import Backend, hookimpl

    class MyBackend(Backend):
        NAME = "mybackend"
        KEY_VERSION = 1           # bump when your actions' outputs change meaning
        REQUIRES_API = (1, 0)     # the plugin API version you were written for
        ENV_VAR = "UKBUILD_MYBACKEND_PREFIX"
        ...

    @hookimpl
    def ukbuild_backends():
        return [MyBackend]

Lifecycle, in order:

1. ``detect(options, context) -> Detection`` — find the toolchain (on the
   env var's prefix, then PATH), read versions *from the tools*, hash what
   identifies them.  The returned :class:`~ukbuild.model.Toolchain` carries
   its identity (enters every key that uses it), its search path and the
   cross-compile environment (``env``: CC, CXX, AR, …, the ``--host``
   triple, a CMake toolchain file, cached configure answers).
2. ``plan(unikernel) -> list[Action]`` — pure: turn a ``[unikernel.NAME]``
   table into actions (compile, link, bake…).  The final action must be
   named ``unikernel.name``.  Backends never run processes or hash
   anything themselves: the core keys and executes the actions.
3. ``checks()`` — named verifiers the core runs on declared outputs after an
   action succeeds; a failed check fails the action and nothing is cached.
4. ``launch(unikernel, kernel, args) -> QemuLaunch | ProcessLaunch`` — how
   ``ukbuild run`` boots the result: under QEMU, or as a host process (a
   Solo5 tender, a unix unikernel).
5. ``image_metadata(unikernel) -> ImageMetadata`` — what image emitters need.

The core imports no backend and no backend imports another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs
import pluggy

from ..errors import ConfigError
from ..model import Action, Origin, Toolchain

if TYPE_CHECKING:
    from ..runner import ProcessLaunch, QemuLaunch

__all__ = [
    "API_VERSION",
    "Backend",
    "DetectContext",
    "Detection",
    "ImageMetadata",
    "UnikernelSpec",
    "hookimpl",
]

#: The plugin API version this ukbuild implements (major, minor).
API_VERSION = (1, 0)

hookimpl = pluggy.HookimplMarker("ukbuild")

Check = Callable[[Path], None]


@attrs.frozen
class DetectContext:
    """What detection may use: the environment given (never ``os.environ`` directly: a
    build gives a :class:`RecordingEnviron`, and a change to a variable read from it makes
    the next build detect again), and caches so that a rebuild does not re-run
    ``--version`` or re-hash tools."""

    environ: Mapping[str, str]
    file_digest: Callable[..., object]
    versions: dict[str, tuple[tuple[int, int], str]] = attrs.field(factory=dict)


class RecordingEnviron(Mapping[str, str]):
    """A copy of an environment that notes what is read from it: the core gives one to
    detection, and the no-op record keeps the variables read (with their values), so a
    build where one of them differs detects again.  Listing it (iterating, ``len``,
    ``items()``…) makes the whole environment count."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._data = dict(environ)
        self.read: set[str] = set()
        self.listed = False

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        self.listed = True
        return iter(self._data)

    def __len__(self) -> int:
        self.listed = True
        return len(self._data)

    def recorded(self) -> dict[str, str | None]:
        """The variables read → their values (None: unset); with the key ``""`` (no variable's
        name) when the whole environment was listed, and then every variable."""
        if self.listed:
            return {"": None, **self._data}
        return {name: self._data.get(name) for name in sorted(self.read)}


@attrs.frozen
class Detection:
    """The outcome of looking for a backend's toolchain.

    When not found, ``reason`` says why and ``env_var`` what to set;
    ``searched`` lists where detection looked.  ``targets`` maps each target
    the backend knows to whether this toolchain can build it.
    """

    backend: str
    toolchain: Toolchain | None
    version: str | None = None
    searched: tuple[str, ...] = ()
    reason: str | None = None
    env_var: str | None = None
    targets: Mapping[str, bool] = attrs.field(factory=dict)

    @property
    def found(self) -> bool:
        return self.toolchain is not None


@attrs.frozen
class UnikernelSpec:
    """A ``[unikernel.NAME]`` table: which backend and toolchain, and its options.

    ``options`` is the table minus ``backend``/``toolchain``; the backend
    validates it with :meth:`Backend.check_options`.
    """

    name: str
    backend: str
    toolchain: str
    options: Mapping[str, object]
    origin: Origin
    project_root: str


@attrs.frozen
class ImageMetadata:
    """What an image emitter needs to know about a built unikernel."""

    kernel: str                    # output path of the kernel, relative to the out dir
    kernel_format: str             # e.g. "multiboot-elf32", "multiboot-elf64-aout", "solo5-hvt"
    cmdline: str = ""              # the boot command line, verbatim
    guest: str | None = None       # urunc unikernelType (rumprun, mirage, …)
    monitor: str | None = None     # urunc hypervisor (qemu, hvt, spt, …)
    devices: Mapping[str, str] = attrs.field(factory=dict)


class Backend:
    """Base class of toolchain backends; subclass it and override what applies."""

    NAME: ClassVar[str]
    KEY_VERSION: ClassVar[int] = 1
    REQUIRES_API: ClassVar[tuple[int, int]] = (1, 0)
    ENV_VAR: ClassVar[str | None] = None
    #: Keys a ``[toolchain.X]`` table with ``backend = NAME`` may have.
    TOOLCHAIN_OPTIONS: ClassVar[frozenset[str]] = frozenset()
    #: Keys a ``[unikernel.X]`` table may have (besides backend and toolchain).
    UNIKERNEL_OPTIONS: ClassVar[frozenset[str]] = frozenset()
    #: Where the backend's description comes from, for ``ukbuild backends``.
    DESCRIPTION: ClassVar[str] = ""

    def detect(self, options: Mapping[str, object], context: DetectContext) -> Detection:
        raise NotImplementedError

    def check_options(self, spec: UnikernelSpec) -> None:
        """Reject unknown or ill-typed options with a ConfigError naming file:line."""
        for key in spec.options:
            if key not in self.UNIKERNEL_OPTIONS:
                allowed = ", ".join(sorted(self.UNIKERNEL_OPTIONS)) or "none"
                raise ConfigError(
                    f"{spec.origin}: unikernel.{spec.name}.{key}: unknown field for backend {self.NAME}",
                    hint=f"allowed: {allowed}",
                    reason="unknown-field",
                )

    def plan(self, unikernel: UnikernelSpec) -> Sequence[Action]:
        raise NotImplementedError

    def checks(self) -> Mapping[str, Check]:
        return {}

    def launch(self, unikernel: UnikernelSpec, kernel: Path, args: Sequence[str]) -> QemuLaunch | ProcessLaunch:
        from ..errors import RunError  # noqa: PLC0415

        raise RunError(f"backend {self.NAME} cannot launch {unikernel.name}", reason="not-runnable")

    def image_metadata(self, unikernel: UnikernelSpec) -> ImageMetadata:
        raise NotImplementedError
