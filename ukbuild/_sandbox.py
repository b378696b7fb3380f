"""Running an action's command under bubblewrap: no network (unless the action fetches), no writes
outside its scratch dir.

:func:`wrap` turns an argv into a ``bwrap`` command line that gives the
action a read-only view of the host, a private ``/tmp`` and ``/dev``, no
network (its own, empty network namespace: not even loopback reaches the
host) and its scratch dir, writable, at the fixed path ``/ukbuild/work``
(:data:`model.LOGICAL_WORKDIR`), where it starts.

The host's root cannot be bound as a whole: ``/ukbuild`` does not exist on
the host and ``/`` is read-only inside, so no mount point can be made for
the scratch dir.  Instead each top-level entry of ``/`` is bound read-only
(symlinks such as ``/bin -> usr/bin`` are recreated), the scratch dir is
bound on top, and the sandbox's own root is remounted read-only last.

:func:`bwrap_available` says whether this works here (bwrap installed and
allowed to create namespaces); it runs one probe per process.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .model import LOGICAL_WORKDIR

__all__ = ["bwrap_available", "wrap"]

#: Host entries the sandbox gets its own instance of instead of the host's.
_PRIVATE = ("dev", "proc", "tmp")
PROBE_TIMEOUT = 10.0


def _root_args(root: str) -> list[str]:
    """Each top-level entry of ``root`` bound read-only at ``/ENTRY`` (symlinks recreated)."""
    args: list[str] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name in _PRIVATE or entry.name == LOGICAL_WORKDIR.strip("/").split("/")[0]:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), "/" + entry.name]
        elif entry.is_dir():
            args += ["--ro-bind", entry.path, "/" + entry.name]
    return args


def wrap(
    argv: Sequence[str],
    work: Path,
    *,
    workdir: str = "",
    writable: Sequence[Path] = (),
    readonly: Sequence[Path] = (),
    network: bool = False,
    root: Path | None = None,
) -> list[str]:
    """``argv`` to run under bwrap with ``work`` at /ukbuild/work, starting in ``workdir`` below it.

    ``writable`` paths (e.g. the action's HOME) are bound writable at their own
    path; ``readonly`` paths under the private ``/tmp`` (a toolchain or an
    interpreter installed there) are bound read-only so they stay visible.
    ``network`` keeps the host's network (an action marked as fetching).
    ``root`` replaces the host's file system with that tree (a pinned build
    environment); nothing of the host is visible then but ``writable``.
    Paths in ``argv`` and the environment must name the scratch dir as
    /ukbuild/work: its host path is read-only inside.
    """
    logical = LOGICAL_WORKDIR.rstrip("/")
    chdir = f"{logical}/{workdir}".rstrip("/") if workdir else logical
    args = [
        "bwrap", *([] if network else ["--unshare-net"]), "--unshare-ipc", "--unshare-pid", "--unshare-uts",
        "--die-with-parent",
        *_root_args(str(root) if root is not None else "/"),
        "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        "--bind", str(work), logical,
    ]
    for path in sorted({str(p) for p in readonly if str(p).startswith("/tmp/") and os.path.exists(p)}):
        args += ["--ro-bind", path, path]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    return [*args, "--remount-ro", "/", "--chdir", chdir, "--", *argv]


@functools.cache
def bwrap_available() -> bool:
    """True when ``bwrap`` is on PATH and a sandbox as :func:`wrap` builds it starts here."""
    if shutil.which("bwrap") is None:
        return False
    with tempfile.TemporaryDirectory(prefix="ukbuild-bwrap-probe-") as work:
        try:
            proc = subprocess.run(
                wrap(["sh", "-c", f"test \"$(pwd)\" = {LOGICAL_WORKDIR} && : > probe"], Path(work)),
                stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0 and os.path.exists(os.path.join(work, "probe"))
