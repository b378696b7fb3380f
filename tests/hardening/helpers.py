"""Synthetic projects and checks shared by the hardening tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from ukbuild._store import Problem, Store

#: Problems that mean an entry is wrong; temp files of dead writers are not entries.
ENTRY_PROBLEMS = {"corrupt-blob", "corrupt-action", "dangling-action", "stray-file"}


def write_project(root: Path, *, small: int = 24, large: int = 3, version: str = "A") -> Path:
    """Many small actions, a few outputs of 64 KiB and more (zstd paths), a directory output
    and a final action that depends on all of them.  ``version`` changes every output."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ['[project]\nname = "hardening"\n']
    for i in range(small):
        lines.append(
            f'[action.small{i}]\ncommand = ["sh", "-c", "printf \'small {i} {version}\\\\n\' > s/{i}.txt"]\n'
            f'outputs = ["s/{i}.txt"]\n'
        )
    for k in range(large):
        size = (k + 1) * 256 * 1024
        lines.append(
            f'[action.large{k}]\ncommand = ["sh", "-c", "yes \'large {k} {version}\' | head -c {size} > b/{k}.bin"]\n'
            f'outputs = ["b/{k}.bin"]\n'
        )
    lines.append(
        '[action.tree]\ncommand = ["sh", "-c", '
        f'"mkdir -p t/sub && yes \'tree {version}\' | head -c 200000 > t/sub/big && echo {version} > t/small && '
        'ln -s sub/big t/link"]\noutputs = ["t/"]\n'
    )
    deps = ", ".join([f'"small{i}"' for i in range(small)] + [f'"large{k}"' for k in range(large)] + ['"tree"'])
    lines.append(
        '[action.sum]\ncommand = ["sh", "-c", "cat s/*.txt b/*.bin t/sub/big t/small > all.bin"]\n'
        f'deps = [{deps}]\noutputs = ["all.bin"]\n'
    )
    (root / "ukbuild.toml").write_text("\n".join(lines))
    return root


def entry_problems(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.kind in ENTRY_PROBLEMS]


def verify_clean(cache: Path) -> None:
    """The cache holds no corrupt, half-written or dangling entry."""
    bad = entry_problems(Store(cache).verify())
    assert not bad, "\n".join(map(str, bad))


def output_files(out: Path) -> dict[str, bytes]:
    """Every file and symlink target below ``out``, outside ukbuild's state dir."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames[:] = [d for d in dirnames if d != ".ukbuild"]
        for name in filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(out))
            found[rel] = ("->" + os.readlink(path)).encode() if path.is_symlink() else path.read_bytes()
    return found


def start_build(project: Path, cache: Path, *extra: str, stdout: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """``ukbuild build`` in its own session, events unbuffered (so a kill loses none)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ukbuild", "build", "-C", str(project), "--cache-dir", str(cache), *extra],
        stdout=stdout, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the build and every process it started, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


