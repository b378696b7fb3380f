"""Every hook a ukbuild plugin can implement (pluggy specifications).

A plugin is a module (published in the ``ukbuild`` entry-point group, or
registered on a plugin manager directly) with functions marked
``@ukbuild.plugins.hookimpl``.  There is one hook today; the backend's
methods (see :class:`ukbuild.plugins.Backend`) carry the rest of the
contract, so a backend's whole behaviour is in one class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from . import Backend

hookspec = pluggy.HookspecMarker("ukbuild")


@hookspec
def ukbuild_backends() -> list[type[Backend]]:  # type: ignore[empty-body]
    """Return the :class:`~ukbuild.plugins.Backend` classes this plugin provides.

    Called once per plugin manager.  Results of all plugins are merged; two
    backends with the same ``NAME`` are an error naming both plugins.
    """
