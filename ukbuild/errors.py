"""The one exception tree of ukbuild.

Every error a user can cause is a :class:`UkbuildError`: it carries a one-line
``message`` (what went wrong and where), an optional multi-line ``detail``, a
``hint`` (the next thing to try) and a stable, kebab-case ``reason`` that tests
and tools match on.  The library never prints or exits; the CLI formats these.
Anything that is not a ``UkbuildError`` is a bug and keeps its traceback.
"""

from __future__ import annotations


class UkbuildError(Exception):
    """Base class of every error a user can cause.

    ``exit_code`` is what the CLI returns for it: 2 for configuration and
    usage errors, 1 for everything that failed while building.
    """

    exit_code = 1
    default_reason = "error"

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        hint: str | None = None,
        reason: str | None = None,
        temporary: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint
        self.reason = reason or self.default_reason
        self.temporary = temporary

    def __str__(self) -> str:
        return self.message


class ConfigError(UkbuildError):
    """A project, recipe or option is wrong; the message starts with its origin."""

    exit_code = 2
    default_reason = "bad-config"


class PluginError(UkbuildError):
    """A plugin failed to load or broke the hook contract."""

    exit_code = 2
    default_reason = "plugin-error"


class ToolchainError(UkbuildError):
    """A toolchain or tool was not found, or did not work."""

    exit_code = 2
    default_reason = "tool-not-found"


class SourceError(UkbuildError):
    """A source could not be fetched, verified, extracted or patched."""

    default_reason = "source-error"


class BuildError(UkbuildError):
    """An action failed: non-zero exit, missing output, or a failed check."""

    default_reason = "action-failed"


class StoreError(UkbuildError):
    """The artefact store is unusable (not: a single corrupt entry, which is a miss)."""

    default_reason = "store-error"


class EmitError(UkbuildError):
    """An image could not be assembled."""

    default_reason = "emit-error"


class RunError(UkbuildError):
    """A kernel or image could not be launched, or its guest misbehaved."""

    default_reason = "run-error"


class Cancelled(UkbuildError):
    """The build was cancelled (Ctrl-C or ``Build.cancel()``)."""

    exit_code = 130
    default_reason = "cancelled"


class UkbuildWarning(UserWarning):
    """Something degraded but the build goes on (e.g. the cache is not writable)."""


UkbuildWarning.__module__ = "ukbuild"
