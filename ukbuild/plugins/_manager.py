"""Loading plugins: entry points of the ``ukbuild`` group, checked at load time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pluggy

from ..errors import PluginError
from . import API_VERSION, Backend, hookspecs

ENTRY_POINT_GROUP = "ukbuild"


def plugin_manager(extra: Iterable[object] = (), *, entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the hook specs, installed plugins and ``extra`` modules/objects."""
    pm = pluggy.PluginManager("ukbuild")
    pm.add_hookspecs(hookspecs)
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not look like a ukbuild bug
            raise PluginError(
                f"a ukbuild plugin failed to load: {exc}",
                hint="reinstall or uninstall the plugin named in the message",
                reason="plugin-load-failed",
            ) from exc
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} breaks the hook contract: {exc}", reason="bad-hook") from exc
    return pm


def backends(pm: pluggy.PluginManager) -> Mapping[str, Backend]:
    """Instantiate every backend the plugins provide, checking names and API versions."""
    found: dict[str, Backend] = {}
    origins: dict[str, str] = {}
    for plugin_result, plugin in zip(
        pm.hook.ukbuild_backends(), reversed([p for p in pm.get_plugins() if hasattr(p, "ukbuild_backends")]),
        strict=False,
    ):
        for cls in plugin_result or ():
            source = getattr(plugin, "__name__", repr(plugin))
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise PluginError(f"{source}: ukbuild_backends returned {cls!r}, not a Backend subclass", reason="bad-hook")
            name = getattr(cls, "NAME", None)
            if not name:
                raise PluginError(f"{source}: backend class {cls.__name__} has no NAME", reason="bad-hook")
            major, minor = cls.REQUIRES_API
            if major != API_VERSION[0] or minor > API_VERSION[1]:
                raise PluginError(
                    f"backend {name} ({source}) needs plugin API {major}.{minor}; this ukbuild has "
                    f"{API_VERSION[0]}.{API_VERSION[1]}",
                    hint="install a ukbuild version that supports it, or an older backend",
                    reason="api-mismatch",
                )
            if name in found:
                raise PluginError(
                    f"two plugins provide backend '{name}': {origins[name]} and {source}",
                    hint="uninstall one of them",
                    reason="duplicate-backend",
                )
            found[name] = cls()
            origins[name] = source
    return found
