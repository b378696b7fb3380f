"""Shared pieces of the benchmarks: where ukbuild is, timing, result rows."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The venv's console script, run directly (not through a pyenv shim).
UKBUILD = Path(os.environ.get("UKBUILD_BENCH_UKBUILD", REPO / ".venv" / "bin" / "ukbuild"))
#: The interpreter the console script runs on, for in-process measurements.
VENV_PYTHON = UKBUILD.parent / "python"
#: GNU time, for peak RSS (Debian package ``time``).
TIME = "/usr/bin/time"


@dataclass
class Row:
    """One line of the results table.

    ``higher_is_better`` says how ``ratio`` is read against ``target``
    (ukbuild / baseline for times, baseline / ukbuild for speed-ups);
    ``target`` None makes the row informational.  ``key`` names the row in
    ``baseline.json``: stable across sizes of data and machines.
    """

    name: str
    ukbuild: str
    baseline: str
    ratio: float
    target: float | None = None
    higher_is_better: bool = False
    key: str = ""
    #: the recorded ratio for ``key``, filled in by run.py
    recorded: float | None = None

    @property
    def change(self) -> float | None:
        """How much worse than the recorded ratio (0.25: 25% worse; negative: better)."""
        if self.recorded is None or self.recorded <= 0 or self.ratio <= 0:
            return None
        return self.recorded / self.ratio - 1 if self.higher_is_better else self.ratio / self.recorded - 1

    def regressed(self, tolerance: float) -> bool:
        change = self.change
        return change is not None and change > tolerance

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "(info)"
        return f"{'>=' if self.higher_is_better else '<='} {self.target:.2f}x"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def workspace(name: str) -> Iterator[Path]:
    """A private temp dir for one benchmark, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"ukbuild-bench-{name}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ukbuild_env(root: Path) -> dict[str, str]:
    """The environment for ukbuild runs: a private cache and scratch area under ``root``."""
    (root / "tmp").mkdir(exist_ok=True)
    # PYTHONDONTWRITEBYTECODE (set in some CI shells) would make every run compile ukbuild from
    # source, which no installed copy does: its .pyc files are written at install time.
    env = {k: v for k, v in os.environ.items() if not k.startswith("UKBUILD_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(UKBUILD_CACHE_DIR=str(root / "cache"), TMPDIR=str(root / "tmp"))
    return env


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its stdout, or an error with its output if it fails."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def timed(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
          check: Callable[[str], bool] | None = None) -> float:
    """Wall seconds of one run of ``argv``; ``check`` validates its stdout."""
    start = time.perf_counter()
    out = run(argv, cwd=cwd, env=env)
    seconds = time.perf_counter() - start
    if check is not None and not check(out):
        raise RuntimeError(f"{' '.join(argv)}: unexpected output:\n{out[-2000:]}")
    return seconds


def measure(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            rss: bool = False) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes or 0, stdout + stderr) of one run of ``argv``; an error if it fails.

    With ``rss``, the command runs under ``/usr/bin/time -f %M`` (GNU time's
    ``wait4`` figure: the process's own peak, or its largest waited-for
    descendant's).  Taking ``wait4`` here instead would count this Python
    process, whose pages the child holds until it execs (about 15 MB).
    """
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        if rss:
            argv = [TIME, "-f", "%M", "-o", str(rss_file), *argv]
        with open(Path(tmp) / "out", "w+") as out, open(Path(tmp) / "err", "w+") as err:
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, check=False)
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            text = out.read() + err.read()
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{text[-4000:]}")
        peak = int(rss_file.read_text().split()[-1]) * 1024 if rss else 0
    return seconds, peak, text


def median_of(reps: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(reps))


def alternate(reps: int, first: Callable[[], float], second: Callable[[], float],
              before: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """Medians of ``reps`` runs of two measurements, interleaved so drift hits both alike."""
    a, b = [], []
    for _ in range(reps):
        before()
        a.append(first())
        before()
        b.append(second())
    return statistics.median(a), statistics.median(b)


def tree_size(root: Path) -> tuple[int, int]:
    """(regular files, bytes) below ``root``."""
    files = size = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            files += 1
            size += st.st_size
    return files, size


def mb(size: int) -> float:
    return size / 1e6
