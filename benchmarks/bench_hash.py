"""Input hashing: ukbuild's tree hashing vs ``sha256sum``, page cache warm.

The tree is shaped like an unpacked source tree (full run: 5,000 source
files of 0.5–24 KiB in directories of 50, plus four 16 MiB archives; about
130 MB).  ukbuild hashes it as the scheduler does for a directory input on
a fresh checkout: ``_trees.scan`` with an empty ``FileDigests`` journal,
then ``merkle`` for the tree digest, timed inside the interpreter.  The
baseline is ``find -type f -print0 | xargs -0 sha256sum``.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path

from _common import VENV_PYTHON, Row, alternate, mb, run, say, timed, tree_size, workspace

REPS = 5
SIZES = {"full": (5000, 4), "quick": (1000, 1)}  # (source files, 16 MiB archives)

_HASH = """\
import sys, time
from pathlib import Path
from ukbuild._journal import FileDigests
from ukbuild._trees import merkle, scan
start = time.perf_counter()
entries = scan(Path(sys.argv[1]), FileDigests({}))
scanned = time.perf_counter()
merkle(entries)
print(scanned - start, time.perf_counter() - start)
"""


def generate(root: Path, sources: int, archives: int) -> None:
    rng = random.Random(256)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_(){};", k=rng.randint(2, 10))) for _ in range(3000)]
    for i in range(sources):
        path = root / f"d{i // 2500}" / f"s{i // 50:03d}" / f"file{i:05d}.c"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(512, 24 << 10)
        path.write_bytes(b" ".join(rng.choices(words, k=size // 5 + 1))[:size])
    for i in range(archives):
        (root / f"archive{i}.tar.gz").write_bytes(rng.randbytes(16 << 20))


def bench(quick: bool) -> list[Row]:
    with workspace("hash") as root:
        tree = root / "tree"
        generate(tree, *SIZES["quick" if quick else "full"])
        files, size = tree_size(tree)
        say(f"hash: {files} files, {mb(size):.0f} MB")
        scans: list[float] = []

        def ukbuild() -> float:
            scanned, total = map(float, run([str(VENV_PYTHON), "-c", _HASH, str(tree)]).split())
            scans.append(scanned)
            return total

        def sha256sum() -> float:
            return timed(["bash", "-o", "pipefail", "-c", 'find "$1" -type f -print0 | xargs -0 sha256sum >/dev/null',
                          "bash", str(tree)])

        alternate(1, ukbuild, sha256sum)  # warm the page cache
        ukb, sha = alternate(REPS, ukbuild, sha256sum)
    say(f"hash: ukbuild {ukb:.2f} s (scan alone {statistics.median(scans):.2f} s), sha256sum {sha:.2f} s")
    return [
        Row(f"input hashing, {files} files, {mb(size):.0f} MB", f"{mb(size) / ukb:.0f} MB/s",
            f"sha256sum {mb(size) / sha:.0f} MB/s", sha / ukb, target=0.9, higher_is_better=True, key="hash"),
    ]
