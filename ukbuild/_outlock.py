"""One build at a time per output directory, as Bazel holds its output base: two builds
writing the same outputs would remove each other's temp files and overwrite each other's
records.  A second build waits for the first; building into different output
directories (or only reading one, as a no-op check does) needs no lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable


def hold(state_dir: str, out_dir: str, warn: Callable[[str], None]) -> tuple[int, bool]:
    """Take the lock of the build whose state lives in ``state_dir``, waiting (with a
    warning) while another build writing ``out_dir`` holds it.  Returns what
    :func:`release` takes, and whether it waited."""
    fd = os.open(os.path.join(state_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            warn(f"another build is writing {out_dir}: waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fd, True
    except BaseException:  # (Ctrl-C while waiting)
        os.close(fd)
        raise
    return fd, False


def release(fd: int) -> None:
    os.close(fd)
