"""Image writers vs the shell pipelines they replace (standalone; ratios from one run).

1. Raw disk: ukbuild's writer (MBR + FAT16 in Python, then ``syslinux
   --install``) vs the command sequence ``solo5-virtio-mkimage`` runs
   (oci-and-images.md §7.2: truncate, sfdisk, dd, mkdosfs, syslinux
   --install, mcopy, cat | dd conv=sparse), same kernel, 1 GiB image.
   Target: ukbuild >= 20x faster.
2. OCI layer: ``entries_from_tree`` + ``make_layer`` (deterministic tar,
   gzip -9) vs ``tar --sort=name --mtime=@0 --owner=0 --group=0 | gzip -n``
   on the same tree.  Target: >= 1x (no slower).

Each side runs REPS times (RAW_REPS for the raw disk, whose baseline takes
seconds), alternating, page cache warm; the medians are compared.  Part of
``benchmarks/run.py`` (``--only images``); standalone it prints the same
table for these two rows and exits 1 if a target is missed:

    .venv/bin/python benchmarks/images.py [--quick]
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, alternate, say

from ukbuild.disk import syslinux
from ukbuild.disk.rawdisk import write_raw_disk
from ukbuild.oci.tar import entries_from_tree, make_layer

REPS = 5
RAW_REPS = 3
DISK_MIB = 1024
RAW_TARGET = 20.0
LAYER_TARGET = 1.0
CMDLINE = '{"cmdline":"hello.bin a,b \\"c d\\""}'
KERNEL = Path(__file__).resolve().parent.parent / "examples" / "multiboot" / "hello.c"

# The solo5-virtio-mkimage steps, with its file names; $1 kernel, $2 output, $3 size.
MKIMAGE = r"""
set -eu
K=$1; OUT=$2; SIZE=$3; W=$(dirname "$OUT")
cp /usr/lib/syslinux/mbr/mbr.bin "$W/image.mbr"
truncate -s "$SIZE" "$W/image.mbr"
echo ",,0xc,*" | sfdisk -q "$W/image.mbr" >/dev/null
START=$(sfdisk -d "$W/image.mbr" | sed -n 's/.*start= *\([0-9]*\),.*/\1/p')
SECTORS=$(sfdisk -d "$W/image.mbr" | sed -n 's/.*size= *\([0-9]*\),.*/\1/p')
dd if="$W/image.mbr" of="$W/image.dos" bs=512 skip="$START" count="$SECTORS" conv=sparse status=none
truncate -s $((START * 512)) "$W/image.mbr"
mkdosfs -F 32 "$W/image.dos" $((SECTORS / 2)) >/dev/null
syslinux --install "$W/image.dos"
printf 'SERIAL 0 115200\nDEFAULT unikernel\nLABEL unikernel\n  KERNEL mboot.c32\n  APPEND -aout unikernel.bin %s\n' \
  "$4" > "$W/syslinux.cfg"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$W/image.dos" "$W/syslinux.cfg" /usr/lib/syslinux/modules/bios/libcom32.c32 \
  /usr/lib/syslinux/modules/bios/mboot.c32 ::/
mcopy -i "$W/image.dos" "$K" ::/unikernel.bin
cat "$W/image.mbr" "$W/image.dos" | dd of="$OUT" conv=sparse status=none
rm -f "$W/image.mbr" "$W/image.dos"
"""


def timer(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def build_kernel(work: Path) -> Path:
    """The Multiboot example kernel (i386), built with the host gcc as the backend does."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backends" / "multiboot"))
    from ukbuild_multiboot.compile import kernel_commands

    commands = kernel_commands("i386", (KERNEL,), work, work / "hello.elf")
    for argv in (*commands.compile, commands.link):
        subprocess.run(argv, check=True, capture_output=True)
    return Path(commands.output)


def make_tree(root: Path, quick: bool) -> None:
    """A unikernel-like layer: a 16 MiB (4 quick) kernel of mixed entropy and 300 small files."""
    rng = random.Random(5)
    blocks = [rng.randbytes(4096) for _ in range(64)] + [bytes(4096)] * 32
    kernel_blocks = 1024 if quick else 4096
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "kernel").write_bytes(b"".join(rng.choice(blocks) for _ in range(kernel_blocks)))
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz =,{}\"\n", k=rng.randint(2, 12))) for _ in range(2000)]
    for i in range(300):
        path = root / "data" / f"d{i // 30}" / f"f{i:03d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b" ".join(rng.choices(words, k=rng.randint(50, 800))))


MISSING_HINT = "apt-get install fdisk dosfstools syslinux mtools gcc"


def missing_tools() -> list[str]:
    return [t for t in ("sfdisk", "mkdosfs", "syslinux", "mcopy", "tar", "gzip", "gcc") if shutil.which(t) is None]


def bench(quick: bool) -> list[Row]:
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"images: needs {', '.join(missing)} ({MISSING_HINT})")
    reps = 3 if quick else REPS
    work = Path(tempfile.mkdtemp(prefix="ukbuild-bench-images-"))
    try:
        kernel = build_kernel(work)
        data = kernel.read_bytes()
        ours_img, theirs_img = work / "ours.img", work / "theirs.img"
        syslinux.find_file("mboot.c32")  # fail early, with the package name, if syslinux-common is missing

        def ours_raw() -> None:
            write_raw_disk(ours_img, data, cmdline=CMDLINE, size_mib=DISK_MIB)

        def theirs_raw() -> None:
            subprocess.run(["bash", "-c", MKIMAGE, "mkimage", str(kernel), str(theirs_img), f"{DISK_MIB}M", CMDLINE],
                           check=True, env={**os.environ, "LC_ALL": "C"})  # fmt: skip

        raw_ours, raw_theirs = alternate(min(reps, RAW_REPS), lambda: timer(ours_raw), lambda: timer(theirs_raw))

        tree = work / "tree"
        make_tree(tree, quick)
        layer_out = work / "layer.tar.gz"

        def ours_layer() -> None:
            layer_out.write_bytes(make_layer(entries_from_tree(tree), compression="gzip").blob.data)

        def theirs_layer() -> None:
            subprocess.run(
                f"tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C {tree} -cf - . | gzip -n > {work}/ref.tar.gz",
                shell=True, check=True,
            )  # fmt: skip

        alternate(1, lambda: timer(ours_layer), lambda: timer(theirs_layer))  # warm-up
        layer_ours, layer_theirs = alternate(reps, lambda: timer(ours_layer), lambda: timer(theirs_layer))
        layer_size = layer_out.stat().st_size
        ref_size = (work / "ref.tar.gz").stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"images: raw disk ukbuild {raw_ours * 1e3:.0f} ms, mkimage steps {raw_theirs * 1e3:.0f} ms; "
        f"layer ukbuild {layer_ours * 1e3:.0f} ms ({layer_size} B), tar | gzip -n {layer_theirs * 1e3:.0f} ms "
        f"({ref_size} B)")
    return [
        Row(f"raw disk image, {DISK_MIB} MiB", f"{raw_ours * 1e3:.0f} ms", f"mkimage steps {raw_theirs * 1e3:.0f} ms",
            raw_theirs / raw_ours, target=RAW_TARGET, higher_is_better=True, key="image-raw"),
        Row("OCI gzip layer", f"{layer_ours * 1e3:.0f} ms", f"tar | gzip -n {layer_theirs * 1e3:.0f} ms",
            layer_theirs / layer_ours, target=LAYER_TARGET, higher_is_better=True, key="image-layer"),
    ]


def main(argv: list[str]) -> int:
    if missing_tools():
        print(f"needs {', '.join(missing_tools())} ({MISSING_HINT})", file=sys.stderr)
        return 2
    from run import table

    rows = bench("--quick" in argv)
    print(table(rows))
    return 1 if any(r.passed is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
