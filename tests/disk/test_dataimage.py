"""ukbuild.disk.dataimage: ext2, ISO9660 (Rock Ridge), FAT and FFS images read back by real
tools (debugfs and e2fsck, xorriso, mtools and fsck.fat, an FFS reader), reproducible under
other TZ, umask, staging path and clock, and refusing what a format cannot store."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ukbuild.disk.dataimage import write_data_image
from ukbuild.disk.output import DEFAULT_EPOCH
from ukbuild.disk.tree import DataTree, Owner
from ukbuild.errors import EmitError

from .ffs import Ffs

MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
BIG = bytes(range(256)) * 280  # 70 KiB: several blocks
#: path → (kind, mode, uid, gid, content) of the tree every format but FAT gets.
EXPECTED = {
    "empty": ("dir", 0o755, 0, 0, b""),
    "etc": ("dir", 0o755, 0, 0, b""),
    "etc/motd": ("file", 0o600, 0, 0, b"hello\n"),
    "www": ("dir", 0o755, 0, 0, b""),
    "www/big.bin": ("file", 0o644, 0, 0, BIG),
    "www/index.html": ("file", 0o644, 1000, 100, b"<h1>hi</h1>\n"),
    "www/link": ("link", 0o777, 0, 0, b"index.html"),
    "www/run.sh": ("file", 0o4755, 0, 0, b"#!/bin/sh\n"),
    "www/sub": ("dir", 0o750, 33, 33, b""),
    "www/sub/a b \"q\".txt": ("file", 0o644, 0, 0, b"x" * 5000),
}
FAT_FILES = {"etc/motd": b"hello\n", "www/index.htm": b"<h1>hi</h1>\n", "www/big.bin": BIG, "README": b"r\n"}


def source_tree(root: Path) -> Path:
    """The project directory of EXPECTED, with checkout modes that must not leak into images."""
    (root / "www" / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "www" / "index.html").write_bytes(EXPECTED["www/index.html"][4])
    (root / "www" / "big.bin").write_bytes(BIG)
    (root / "www" / "run.sh").write_bytes(b"#!/bin/sh\n")
    (root / "www" / "sub" / 'a b "q".txt').write_bytes(b"x" * 5000)
    (root / "www" / "link").symlink_to("index.html")
    (root / "www" / "index.html").chmod(0o600)
    (root / "www" / "big.bin").chmod(0o755)
    return root


def data_tree(root: Path) -> DataTree:
    return DataTree.build(
        tree=source_tree(root), files=[("etc/motd", b"hello\n")],
        modes={"etc/motd": 0o600, "www/sub": 0o750, "www/run.sh": 0o4755},
        owners={"www/index.html": Owner(1000, 100), "www/sub": Owner(33, 33)},
    )  # fmt: skip


def tool_bytes(*argv: str, env: dict[str, str] | None = None) -> bytes:
    proc = subprocess.run(argv, capture_output=True, check=False, env=env, timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout!r}\n{proc.stderr!r}"
    return proc.stdout


def tool(*argv: str, env: dict[str, str] | None = None) -> str:
    return tool_bytes(*argv, env=env).decode()


@pytest.mark.realtool("mke2fs", "debugfs", "e2fsck")
def test_ext2_read_back_by_debugfs_and_clean_for_e2fsck(tmp_path: Path) -> None:
    image = tmp_path / "data.ext2"
    write_data_image(image, "ext2", data_tree(tmp_path / "src"), name="www", epoch=DEFAULT_EPOCH, label="WWW")
    assert image.stat().st_size == 2 << 20 and image.stat().st_mode & 0o777 == 0o644
    tool("e2fsck", "-fn", str(image))
    assert "Filesystem volume name:   WWW" in tool("dumpe2fs", "-h", str(image))
    for path, (kind, mode, uid, gid, content) in EXPECTED.items():
        quoted = '"/' + path.replace('"', '""') + '"'
        stat = tool("debugfs", "-R", f"stat {quoted}", str(image))
        type_name = {"file": "regular", "dir": "directory", "link": "symlink"}[kind]
        assert re.search(rf"Type: {type_name}\s+Mode:\s+0?{mode:04o}", stat), (path, stat)
        assert re.search(rf"User:\s+{uid}\s+Group:\s+{gid}", stat), (path, stat)
        for field in ("ctime", "atime", "mtime"):
            assert f"{field}: 0x12cea600 -- Tue Jan  1 00:00:00 1980" in stat, (path, field, stat)
        if kind == "file":
            dumped = tmp_path / "dumped"
            tool("debugfs", "-R", f"dump {quoted} {dumped}", str(image))
            assert dumped.read_bytes() == content
        if kind == "link":
            assert f'Fast link dest: "{content.decode()}"' in stat
    listing = tool("debugfs", "-R", "ls -l /www", str(image))
    assert re.search(r"100644 \(1\)\s+1000\s+100\s+12 ", listing), listing


@pytest.mark.realtool("xorriso", "isoinfo")
def test_iso9660_rock_ridge_read_back_by_xorriso(tmp_path: Path) -> None:
    image = tmp_path / "data.iso"
    write_data_image(image, "iso9660", data_tree(tmp_path / "src"), name="www", epoch=DEFAULT_EPOCH, label="WWW")
    listing = tool("xorriso", "-no_rc", "-indev", str(image), "-find", "/", "-exec", "lsdl", "--")
    entries = {}
    for line in listing.splitlines():
        match = re.fullmatch(r"(\S{10})\s+\d+\s+(\d+)\s+(\d+)\s+(\d+) Jan  1  1980 '/(.*?)'(?: -> '(.*)')?", line)
        if match and match.group(5):
            entries[match.group(5)] = match.groups()
    assert set(entries) == set(EXPECTED)
    for path, (kind, mode, uid, gid, content) in EXPECTED.items():
        perms, got_uid, got_gid, size, _name, target = entries[path]
        assert (int(got_uid), int(got_gid)) == (uid, gid), path
        assert perms[0] == {"file": "-", "dir": "d", "link": "l"}[kind], path
        if kind == "file":
            assert int(size) == len(content), path
            assert _perm_bits(perms) == mode, (path, perms)
        if kind == "link":
            assert target == content.decode()
    pvd = tool("isoinfo", "-d", "-i", str(image))
    assert "Volume id: WWW" in pvd and "Rock Ridge signatures version 1 found" in pvd
    extracted = tmp_path / "x"
    tool("xorriso", "-no_rc", "-osirrox", "on", "-indev", str(image), "-extract", "/", str(extracted))
    for path, (kind, *_ids, content) in EXPECTED.items():
        if kind == "file":
            assert (extracted / path).read_bytes() == content, path


def _perm_bits(perms: str) -> int:
    """``-rwsr-xr-x`` → 0o4755."""
    bits = 0
    for i, char in enumerate(perms[1:]):
        bits |= (char not in "-ST") << (8 - i)
    special = (perms[3] in "sS") << 11 | (perms[6] in "sS") << 10 | (perms[9] in "tT") << 9
    return bits | special


@pytest.mark.realtool("mdir", "mtype", "fsck.fat")
def test_fat_read_back_by_mtools_and_clean_for_fsck(tmp_path: Path) -> None:
    image = tmp_path / "data.fat"
    tree = DataTree.build(files=sorted(FAT_FILES.items()))
    write_data_image(image, "fat", tree, name="www", epoch=DEFAULT_EPOCH, label="WWW")
    assert image.stat().st_size == 4 << 20
    tool("fsck.fat", "-n", str(image))
    listing = tool("mdir", "-i", str(image), "-/", "-a", "::", env=MTOOLS_ENV)
    assert "Volume in drive : is WWW" in listing
    for path, content in FAT_FILES.items():
        assert tool_bytes("mtype", "-i", str(image), f"::/{path}", env=MTOOLS_ENV) == content
        name = path.rpartition("/")[2]
        base, _, ext = name.partition(".")
        assert re.search(rf"^{re.escape(base)}\s+{re.escape(ext)}\s+{len(content)} 1980-01-01", listing, re.MULTILINE), name


@pytest.mark.realtool("makefs")
def test_ffs_read_back(tmp_path: Path) -> None:
    """makefs's FFSv1 holds the names, owners, modes, times and bytes given, and no heap pointers."""
    image = tmp_path / "data.ffs"
    write_data_image(image, "ffs", data_tree(tmp_path / "src"), name="www", epoch=DEFAULT_EPOCH)
    assert "Unix Fast File system [v1] (little-endian)" in tool("file", str(image))
    fs = Ffs(image)
    assert fs.pointers == bytes(32)
    got = fs.listing()
    assert set(got) == set(EXPECTED)
    for path, (kind, mode, uid, gid, content) in EXPECTED.items():
        inode, data = got[path]
        kind_bits = {"file": 0o100000, "dir": 0o040000, "link": 0o120000}[kind]
        assert (inode.mode, inode.uid, inode.gid, inode.mtime) == (kind_bits | mode, uid, gid, DEFAULT_EPOCH), path
        if kind != "dir":
            assert data == content, path


def emit(cwd: Path, fmt: str, *, tz: str = "UTC", umask: int = 0o022, prefix: tuple[str, ...] = ()) -> bytes:
    """Run ``ukbuild-emit FMT`` in ``cwd`` on a fresh copy of the tree; the image's bytes."""
    source_tree(cwd / "tree")
    (cwd / "motd").write_bytes(b"hello\n")
    files = ["--file", "etc/motd=motd"]
    args = ["--tree", "tree", *files, "--mode", "etc/motd=0600", "--mode", "www/sub=0750",
            "--owner-of", "www/index.html=1000:100", "--owner-of", "www/sub=33:33"]  # fmt: skip
    if fmt == "fat":
        (cwd / "fat").mkdir()
        for path, content in FAT_FILES.items():
            (cwd / "fat" / path.replace("/", "_")).write_bytes(content)
        args = [a for path in FAT_FILES for a in ("--file", f"{path}=fat/{path.replace('/', '_')}")]
    env = {**os.environ, "TZ": tz, "SOURCE_DATE_EPOCH": "0"}
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "ukbuild.emitters", fmt, "--out", "out.img", "--name", "www", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120,
        preexec_fn=lambda: os.umask(umask),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return (cwd / "out.img").read_bytes()


@pytest.mark.realtool("mke2fs", "debugfs", "xorriso", "makefs", "faketime")
@pytest.mark.parametrize("fmt", ["ext2", "iso9660", "fat", "ffs"])
def test_same_bytes_under_other_tz_umask_path_and_clock(fmt: str, tmp_path: Path) -> None:
    baseline = emit(tmp_path / "a", fmt)
    (tmp_path / "b" / "a" / "much" / "longer" / "path").mkdir(parents=True)
    variant = emit(tmp_path / "b" / "a" / "much" / "longer" / "path", fmt, tz="Pacific/Kiritimati", umask=0o077,
                   prefix=("faketime", "2030-01-01 12:00:00"))  # fmt: skip
    assert variant == baseline


@pytest.mark.realtool("mke2fs", "debugfs")
def test_ext2_uuid_and_hash_seed_come_from_the_name(tmp_path: Path) -> None:
    tree = DataTree.build(files=[("a", b"a")])
    for name in ("one", "two"):
        write_data_image(tmp_path / name, "ext2", tree, name=name, epoch=DEFAULT_EPOCH)
    headers = [tool("dumpe2fs", "-h", str(tmp_path / name)) for name in ("one", "two")]
    uuids = [re.search(r"Filesystem UUID:\s+(\S+)", h).group(1) for h in headers]  # type: ignore[union-attr]
    seeds = [re.search(r"Directory Hash Seed:\s+(\S+)", h).group(1) for h in headers]  # type: ignore[union-attr]
    assert len(set(uuids + seeds)) == 4


@pytest.mark.parametrize(("fmt", "tree", "message"), [
    ("fat", DataTree.build(files=[("Long Name.html", b"")]), "cannot store 'Long Name.html' on FAT"),
    ("fat", DataTree.build(files=[("a.txt", b"")], modes={"a.txt": 0o600}), "'a.txt': its mode 0600"),
    ("fat", DataTree.build(files=[("a.txt", b"")], owners={"a.txt": Owner(1, 1)}), "'a.txt': its owner 1:1"),
])  # fmt: skip
def test_fat_refuses_what_it_cannot_store(fmt: str, tree: DataTree, message: str, tmp_path: Path) -> None:
    out = tmp_path / "out.img"
    with pytest.raises(EmitError) as excinfo:
        write_data_image(out, fmt, tree, name="x", epoch=DEFAULT_EPOCH)
    assert message in excinfo.value.message
    assert list(tmp_path.iterdir()) == []


def test_fat_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "link").symlink_to("x")
    with pytest.raises(EmitError, match="'link': it is a symlink, which FAT cannot store"):
        write_data_image(tmp_path / "o.img", "fat", DataTree.build(tree=tmp_path / "src"), name="x", epoch=0)
    assert not (tmp_path / "o.img").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"files": [("a", b""), ("a", b"")]}, "'a' is given twice"),
    ({"files": [("a", b""), ("a/b", b"")]}, "'a' is a file, not a directory"),
    ({"files": [("../a", b"")]}, "is not a clean relative path"),
    ({"files": [("a", b"")], "modes": {"b": 0o600}}, "modes 'b': no such path in the image"),
])  # fmt: skip
def test_tree_refuses_bad_paths(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EmitError, match=re.escape(message)):
        DataTree.build(**kwargs)  # type: ignore[arg-type]


@pytest.mark.realtool("mke2fs", "debugfs", "makefs")
@pytest.mark.parametrize("fmt", ["ext2", "ffs"])
def test_content_that_does_not_fit_leaves_nothing(fmt: str, tmp_path: Path) -> None:
    tree = DataTree.build(files=[("big", os.urandom(5 << 20))])
    out = tmp_path / "out" / "img"
    out.parent.mkdir()
    with pytest.raises(EmitError, match="failed") as excinfo:
        write_data_image(out, fmt, tree, name="x", epoch=DEFAULT_EPOCH, size_mib=4)
    assert "raise size_mib" in (excinfo.value.hint or "")
    assert list(out.parent.iterdir()) == []


def test_missing_tool_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmitError) as excinfo:
        write_data_image(tmp_path / "o", "ffs", DataTree.build(files=[("a", b"")]), name="x", epoch=0)
    assert excinfo.value.reason == "tool-not-found" and "apt-get install makefs" in (excinfo.value.hint or "")
    assert shutil.which("makefs", path=str(tmp_path)) is None


@pytest.mark.parametrize(("fmt", "label", "size", "message"), [
    ("ext2", "x" * 17, None, "an ext2 label is 1 to 16"),
    ("iso9660", "lower", None, "an ISO volume ID"),
    ("fat", "TOO LONG LABEL", None, "a FAT label"),
    ("ffs", "X", None, "a ffs image has no volume label"),
    ("iso9660", None, 8, "is as large as its content"),
    ("fat", None, 2, "too small"),
])  # fmt: skip
def test_bad_label_or_size(fmt: str, label: str | None, size: int | None, message: str, tmp_path: Path) -> None:
    with pytest.raises(EmitError, match=re.escape(message)):
        write_data_image(tmp_path / "o", fmt, DataTree.build(), name="x", epoch=0, label=label, size_mib=size)
    assert not (tmp_path / "o").exists()
