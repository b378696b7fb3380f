"""ukbuild.disk.fat and ukbuild.disk.mbr: file system and partition table, checked by dosfstools,
mtools and sfdisk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ukbuild.disk.fat import FatVolume, Geometry, fat_datetime, short_name
from ukbuild.disk.mbr import Partition, mbr
from ukbuild.errors import EmitError

MIB = 1 << 20
FILES = [
    ("syslinux.cfg", b"SERIAL 0 115200\n"),
    ("kernel.elf", bytes(range(256)) * 300),
    ("data/sub/a.txt", b"hello"),
    ("data/B.TXT", b""),
    ("README", b"readme"),
]
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "TZ": "UTC"}


def write_volume(path: Path, files: list[tuple[str, bytes]], size_mib: int = 7) -> None:
    with path.open("wb") as f:
        f.truncate(size_mib * MIB)
        FatVolume(size_mib * 2048, files, 0x1234ABCD, "UKBOOT", 1700000000).write(f, 0)


class TestNames:
    @pytest.mark.parametrize(
        ("name", "stored", "flags"),
        [
            ("kernel.elf", b"KERNEL  ELF", 0x18),
            ("README", b"README     ", 0),
            ("Makefile", None, None),
            ("libcom32.c32", b"LIBCOM32C32", 0x18),
            ("DATA.json", b"DATA    JSO", None),
        ],
    )
    def test_short_names(self, name: str, stored: bytes | None, flags: int | None) -> None:
        """8.3 names are upper-cased with NT case flags; mixed case is refused."""
        if flags is None:
            with pytest.raises(EmitError) as excinfo:
                short_name(name, where=name)
            assert excinfo.value.reason == "bad-file-name"
        else:
            assert short_name(name, where=name) == (stored, flags)

    @pytest.mark.parametrize("name", ["toolongname.txt", "a.json", "a b.txt", "a.b.c", ".hidden"])
    def test_not_8_3(self, name: str) -> None:
        """Names FAT can only hold as long names are refused, naming the file."""
        with pytest.raises(EmitError, match=f"cannot store {name!r}"):
            short_name(name, where=f"dir/{name}")

    def test_dates(self) -> None:
        """Timestamps are UTC and clamped to FAT's 1980 start."""
        assert fat_datetime(0) == fat_datetime(315532800) == (0x21, 0)
        assert fat_datetime(1700000000) == ((43 << 9) | (11 << 5) | 14, (22 << 11) | (13 << 5) | 10)


class TestGeometry:
    def test_smallest_clusters(self) -> None:
        """Clusters are as small as FAT16 allows."""
        assert Geometry.for_size(7 * 2048).sectors_per_cluster == 1
        assert Geometry.for_size(1000 * 2048).sectors_per_cluster == 32

    @pytest.mark.parametrize("mib", [1, 4096])
    def test_impossible_sizes(self, mib: int) -> None:
        """Sizes FAT16 cannot have are refused with the range."""
        with pytest.raises(EmitError, match="2 MiB to 2 GiB") as excinfo:
            Geometry.for_size(mib * 2048)
        assert excinfo.value.reason == "bad-disk-size"


class TestVolume:
    @pytest.mark.realtool("fsck.fat", "mdir", "mtype")
    def test_tools_agree(self, tmp_path: Path) -> None:
        """fsck.fat finds nothing to fix, and mtools reads back names, case and contents."""
        image = tmp_path / "fat.img"
        write_volume(image, FILES)
        subprocess.run(["fsck.fat", "-n", image], check=True, capture_output=True)
        listing = subprocess.run(
            ["mdir", "-i", image, "-b", "-/", "::"],
            env=MTOOLS_ENV,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        assert sorted(listing) == sorted(
            [
                "::/syslinux.cfg",
                "::/kernel.elf",
                "::/data/",
                "::/data/sub/",
                "::/data/sub/a.txt",
                "::/data/B.TXT",
                "::/README",
            ]
        )
        for path, data in FILES:
            got = subprocess.run(
                ["mtype", "-i", image, f"::/{path}"],
                env=MTOOLS_ENV,
                check=True,
                capture_output=True,
            ).stdout
            assert got == data

    @pytest.mark.realtool("minfo")
    def test_ids_and_label(self, tmp_path: Path) -> None:
        """The volume ID and label are the ones given."""
        image = tmp_path / "fat.img"
        write_volume(image, FILES)
        info = subprocess.run(
            ["minfo", "-i", image, "::"], env=MTOOLS_ENV, check=True, capture_output=True, text=True
        ).stdout
        assert "serial number: 1234ABCD" in info
        assert 'label="UKBOOT     "' in info

    def test_same_files_same_bytes(self, tmp_path: Path) -> None:
        """The order files are given in does not matter."""
        write_volume(tmp_path / "a.img", FILES)
        write_volume(tmp_path / "b.img", list(reversed(FILES)))
        assert (tmp_path / "a.img").read_bytes() == (tmp_path / "b.img").read_bytes()

    @pytest.mark.parametrize(
        ("files", "reason"),
        [
            ([("big", bytes(8 * MIB))], "disk-full"),
            ([("a", b""), ("A", b"")], "file-clash"),
            ([("a", b""), ("a/b", b"")], "file-clash"),
            ([("../a", b"")], "bad-file-name"),
            ([(f"f{i}", b"") for i in range(600)], "disk-full"),
        ],
    )
    def test_refused(self, tmp_path: Path, files: list[tuple[str, bytes]], reason: str) -> None:
        """Files that do not fit or clash are clear errors."""
        with pytest.raises(EmitError) as excinfo:
            write_volume(tmp_path / "fat.img", files)
        assert excinfo.value.reason == reason

    def test_bad_label(self, tmp_path: Path) -> None:
        """Labels are what FAT can store."""
        with (tmp_path / "x").open("wb") as f, pytest.raises(EmitError, match="volume label"):
            FatVolume(7 * 2048, [], 1, "lower", 0).write(f, 0)


@pytest.mark.realtool("sfdisk")
def test_mbr_read_by_sfdisk(tmp_path: Path) -> None:
    """sfdisk reads the table: one bootable FAT16-LBA partition at 1 MiB, the given signature."""
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
        f.write(mbr(b"\xfa" * 440, 0x554B4244, [Partition(2048, 64 * 2048 - 2048)]))
    dump = json.loads(
        subprocess.run(["sfdisk", "--json", image], check=True, capture_output=True).stdout
    )["partitiontable"]
    assert dump["id"] == "0x554b4244"
    [part] = dump["partitions"]
    assert (part["start"], part["size"], part["type"], part["bootable"]) == (
        2048,
        129024,
        "e",
        True,
    )
    assert image.read_bytes()[:440] == b"\xfa" * 440


def test_mbr_too_much_code() -> None:
    """More than 440 bytes of boot code is a programming error."""
    with pytest.raises(ValueError, match="do not fit"):
        mbr(bytes(441), 0, [])
