"""Warm-cache restore: rebuild into an empty output dir from the cache, vs ``cp -r``.

The project's six actions each write a directory shaped like part of an
image build (sizes for the full run, about 190 MB in 2,200 files):

* ``images``: 3 kernel images, 8–24 MiB, ELF-like
* ``libs``: 60 shared libraries, 64 KiB–2 MiB, ELF-like
* ``objs``: 500 objects, 1–60 KiB, ELF-like
* ``blobs``: 4 initrd/firmware blobs, 4–16 MiB, random (incompressible)
* ``assets``: 60 packed assets, 64–512 KiB, random
* ``headers``: 1,500 headers and configs, 0.5–16 KiB, text

"ELF-like" data is made of slices of the host's own shared libraries, so
it compresses as real binaries do.  After one build fills the cache, each
timed restore deletes the output dir (with its ``.ukbuild`` state) and
rebuilds: every action is a cache hit and every file is exported from the
store (zstd-decompressed and verified when 64 KiB or larger).  The baseline
copies the same tree with ``cp -r``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from _common import UKBUILD, Row, alternate, mb, median_of, run, say, timed, tree_size, ukbuild_env, workspace

from ukbuild._store import COMPRESS_MIN

REPS = 5
CORPUS_BYTES = 8 << 20
LIB_DIR = Path("/usr/lib/x86_64-linux-gnu")
#: name: (kind, files, smallest, largest)
PACKAGES = {
    "images": ("elf", 3, 8 << 20, 24 << 20),
    "libs": ("elf", 60, 64 << 10, 2 << 20),
    "objs": ("elf", 500, 1 << 10, 60 << 10),
    "blobs": ("random", 4, 4 << 20, 16 << 20),
    "assets": ("random", 60, 64 << 10, 512 << 10),
    "headers": ("text", 1500, 512, 16 << 10),
}

GENERATOR = '''\
"""Write COUNT deterministic files of KIND, SMALLEST..LARGEST bytes, below OUT."""
import random
import sys
from pathlib import Path

kind, count, lo, hi, seed, out = sys.argv[1], *map(int, sys.argv[2:6]), Path(sys.argv[6])
rng = random.Random(seed)
corpus = Path("corpus.bin").read_bytes() if kind == "elf" else b""
words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_", k=rng.randint(2, 12))) for _ in range(2000)]
for i in range(count):
    size = rng.randint(lo, hi)
    if kind == "random":
        data = rng.randbytes(size)
    elif kind == "elf":
        parts, n = [], 0
        while n < size:
            k = rng.randint(4096, 65536)
            at = rng.randrange(len(corpus) - k)
            parts.append(corpus[at : at + k])
            n += k
        data = b"".join(parts)[:size]
    else:
        data = b" ".join(rng.choices(words, k=size // 6 + 1))[:size]
    path = out / f"{i // 100:02d}" / f"{kind}{i:04d}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o755 if kind == "elf" else 0o644)
'''


def corpus() -> bytes:
    """About 8 MiB of the host's shared libraries: realistic machine code and data."""
    parts, size = [], 0
    for path in sorted(LIB_DIR.glob("*.so*")):
        if size >= CORPUS_BYTES or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if data[:4] == b"\x7fELF":
            parts.append(data)
            size += len(data)
    return b"".join(parts)[:CORPUS_BYTES]


def generate(proj: Path, quick: bool) -> None:
    proj.mkdir()
    (proj / "gen.py").write_text(GENERATOR)
    (proj / "corpus.bin").write_bytes(corpus())
    toml = ['[project]\nname = "restore-bench"', '[toolchain.host]\ntools = ["python3"]']
    for seed, (name, (kind, count, lo, hi)) in enumerate(PACKAGES.items()):
        count = max(1, count // 4) if quick else count
        toml.append(
            f'[action.{name}]\ncommand = ["python3", "gen.py", "{kind}", "{count}", "{lo}", "{hi}", "{seed}", "{name}"]\n'
            f'inputs = ["gen.py", "corpus.bin"]\noutputs = ["{name}/"]'
        )
    (proj / "ukbuild.toml").write_text("\n\n".join(toml) + "\n")


def floor(tree: Path, cas: Path) -> tuple[float, float]:
    """Medians of 3, in seconds, on one core: reading and hashing (SHA-256) every file below
    ``tree`` stored uncompressed; reading and decompressing every ``.zst`` blob below ``cas``
    (zstd checks their frame checksums as it goes).  That is the work a verified restore
    does on top of writing the files, which is all ``cp`` does."""
    import hashlib  # noqa: PLC0415
    import time  # noqa: PLC0415

    import zstandard  # noqa: PLC0415 - the venv's: run.py runs the benchmarks under it

    def seconds(paths: list[Path], work) -> float:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        for path in paths:
            work(path.read_bytes())
        return time.perf_counter() - start

    files = [p for p in (Path(d, n) for d, _, names in os.walk(tree) for n in names)
             if p.stat().st_size < COMPRESS_MIN]
    blobs = sorted(cas.rglob("*.zst"))
    decompress = zstandard.ZstdDecompressor().decompress
    return (median_of(3, lambda: seconds(files, lambda b: hashlib.sha256(b).digest())),
            median_of(3, lambda: seconds(blobs, decompress)))


def fixed_cost(proj: Path, env: dict[str, str]) -> float:
    """Median wall seconds of restoring a one-file project into an empty output dir: what
    a restore costs before it places any bytes."""
    proj.mkdir()
    (proj / "ukbuild.toml").write_text(
        '[project]\nname = "one"\n\n[toolchain.host]\ntools = ["python3"]\n\n'
        '[action.one]\ncommand = ["python3", "-c", "open(\'one\', \'w\').write(\'1\')"]\noutputs = ["one"]\n'
    )
    out = proj / "out"
    build = [str(UKBUILD), "build", "-C", str(proj), "-o", str(out), "--json"]
    run(build, env=env)

    def once() -> float:
        shutil.rmtree(out)
        return timed(build, env=env, check=all_cached)

    return median_of(REPS, once)


def all_cached(out: str) -> bool:
    finished = [e for e in map(json.loads, out.splitlines()) if e.get("event") == "build-finished"]
    return bool(finished) and finished[0]["ok"] and finished[0]["executed"] == 0


def bench(quick: bool) -> list[Row]:
    with workspace("restore") as root:
        proj, out, reference, copy = root / "proj", root / "out", root / "reference", root / "copy"
        generate(proj, quick)
        env = ukbuild_env(root)
        build = [str(UKBUILD), "build", "-C", str(proj), "-o", str(out), "--json"]
        run(build, env=env)
        reference.mkdir()
        for name in PACKAGES:
            shutil.copytree(out / name, reference / name, symlinks=True)
        files, size = tree_size(reference)
        _, stored = tree_size(root / "cache" / "cas")
        say(f"restore: {files} files, {mb(size):.0f} MB ({mb(stored):.0f} MB in the cache)")

        def fresh() -> None:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(copy, ignore_errors=True)
            os.sync()

        def restore() -> float:
            seconds = timed(build, env=env, check=all_cached)
            if tree_size(out)[1] - tree_size(out / ".ukbuild")[1] != size:
                raise RuntimeError("restore: the restored tree differs in size from the built one")
            return seconds

        ukb, cp = alternate(REPS, restore, lambda: timed(["cp", "-r", str(reference), str(copy)]), before=fresh)
        hashing, unpacking = floor(reference, root / "cache" / "cas")
        fixed = fixed_cost(root / "one", env)
    say(f"restore: ukbuild {ukb:.2f} s, cp -r {cp:.2f} s")
    work = cp + hashing + unpacking
    say(f"restore: per-byte floor of a verified restore, one core: SHA-256 of the small files {hashing:.2f} s, "
        f"zstd decompression of the stored blobs {unpacking:.2f} s; with cp's own work that bounds the ratio "
        f"at {cp / work:.2f}x on one core, {cp / max(cp, work / 2):.2f}x with both cores perfectly used "
        f"(start-up aside)")
    say(f"restore: fixed cost of a restore (a one-file project into an empty dir: start-up, imports, loading, "
        f"lookup) {fixed:.2f} s; with it, the ceiling is {cp / (fixed + max(cp, work / 2)):.2f}x")
    return [
        Row(f"warm-cache restore, {mb(size):.0f} MB", f"{mb(size) / ukb:.0f} MB/s", f"cp -r {mb(size) / cp:.0f} MB/s",
            cp / ukb, target=0.7, higher_is_better=True, key="restore"),
    ]
