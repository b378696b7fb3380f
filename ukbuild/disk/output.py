"""Writing output files atomically (all of it at its path, or nothing there) and reproducibly."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from ukbuild.errors import EmitError

OUTPUT_MODE: Final = 0o644  # fixed, not from the umask: outputs are artefacts, not user files
#: The timestamp used when no SOURCE_DATE_EPOCH is given: 1980-01-01, the
#: earliest date FAT can store.
DEFAULT_EPOCH: Final = 315532800


@contextlib.contextmanager
def atomic_output(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; rename it to ``out`` if the block succeeds.

    On any exception, KeyboardInterrupt included, the temporary file is
    removed and ``out`` is left as it was.
    """
    out = Path(out)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        msg = f"{out}: cannot write the output: {e.strerror}"
        raise EmitError(
            msg, hint="check that its directory exists and is writable", reason="output-error"
        ) from e
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(OUTPUT_MODE)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
