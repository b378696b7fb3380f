"""One build at a time per output directory, as Bazel holds its output base: two builds
writing the same outputs would remove each other's temp files and overwrite each other's
records.  A second build waits for the first; building into different output
directories (or only reading one, as a no-op check does) needs no lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable


def hold(state_dir: str, on_wait: Callable[[], None]) -> int:
    """Take the lock of the build whose state lives in ``state_dir`` (waiting, after
    ``on_wait``, while another build holds it); returns what :func:`release` takes."""
    fd = os.open(os.path.join(state_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:  # (Ctrl-C while waiting)
        os.close(fd)
        raise
    return fd


def release(fd: int) -> None:
    os.close(fd)
