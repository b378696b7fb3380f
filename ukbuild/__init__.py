"""ukbuild: content-addressed builds of unikernel images.

The public API (see docs/user-guide.md and docs/api-stability.md)::

    import ukbuild
    project = ukbuild.load_project("examples/multiboot")
    result = ukbuild.Build(project, ["hello"], ukbuild.BuildOptions(jobs=4)).run()

Names are imported on first use, so ``import ukbuild`` stays cheap (the CLI's
no-op fast path depends on it).
"""

from __future__ import annotations

from ._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs the no-op path ~3 ms

_EXPORTS = {
    "Build": "ukbuild.api",
    "BuildOptions": "ukbuild.api",
    "BuildResult": "ukbuild.api",
    "Explanation": "ukbuild.api",
    "build": "ukbuild.api",
    "detect_backends": "ukbuild.api",
    "explain": "ukbuild.api",
    "load_project": "ukbuild.api",
    "run": "ukbuild.api",
    "UkbuildError": "ukbuild.errors",
    "ConfigError": "ukbuild.errors",
    "BuildError": "ukbuild.errors",
    "Cancelled": "ukbuild.errors",
}

__all__ = [
    "Build",
    "BuildError",
    "BuildOptions",
    "BuildResult",
    "Cancelled",
    "ConfigError",
    "Explanation",
    "UkbuildError",
    "__version__",
    "build",
    "detect_backends",
    "explain",
    "load_project",
    "run",
]

if TYPE_CHECKING:
    from .api import Build, BuildOptions, BuildResult, Explanation, build, detect_backends, explain, load_project, run
    from .errors import BuildError, Cancelled, ConfigError, UkbuildError


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ukbuild' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(module), name)
