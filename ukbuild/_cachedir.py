"""Where the artefact cache lives unless told: its own module, because the no-op
fast path reports it and must not import the store."""

from __future__ import annotations

import os


def default_cache_dir() -> str:
    """``$UKBUILD_CACHE_DIR``, else ``$XDG_CACHE_HOME/ukbuild``, else ``~/.cache/ukbuild``."""
    env = os.environ.get("UKBUILD_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ukbuild")
