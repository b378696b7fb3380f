"""ukbuild.disk.syslinux: Debian's files, and configs whose command line mboot.c32 keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from ukbuild.disk import syslinux
from ukbuild.errors import EmitError


def test_config() -> None:
    """The config boots mboot.c32 at once, on COM1, with the command line as given."""
    cfg = syslinux.config("kernel.elf", '{"a": "b, c"}', aout=True)
    assert cfg.splitlines() == [
        "SERIAL 0 115200",
        "PROMPT 0",
        "TIMEOUT 0",
        "DEFAULT unikernel",
        "LABEL unikernel",
        "  KERNEL mboot.c32",
        '  APPEND -aout kernel.elf {"a": "b, c"}',
    ]
    assert syslinux.config("k", "", aout=False).endswith("  APPEND k\n")


@pytest.mark.parametrize(
    ("cmdline", "words"),
    [
        ("a\tb", "control character"),
        ("a\nDEFAULT other", "control character"),
        ("a  b", "repeated spaces"),
        (" a", "leading"),
        ("a ", "trailing"),
        ("a --- b", "module separator"),
        ("---", "module separator"),
    ],
)
def test_refuses_what_syslinux_would_change(cmdline: str, words: str) -> None:
    """Command lines that syslinux or mboot.c32 would alter are refused, not altered."""
    with pytest.raises(EmitError) as excinfo:
        syslinux.config("kernel.elf", cmdline, aout=False)
    assert excinfo.value.reason == "bad-cmdline"
    assert words in str(excinfo.value)


def test_accepts_dashes_inside_words() -> None:
    """Only the word '---' separates modules; '--x' and 'a---b' are fine."""
    syslinux.config("kernel.elf", "--x a---b ----", aout=False)


@pytest.mark.parametrize(("aout", "room"), [(False, 2026), (True, 2020)])
def test_length_limit(aout: bool, room: int) -> None:
    """'mboot.c32 ' + APPEND may hold 2047 bytes; one more hangs the boot, so it is refused."""
    syslinux.config("kernel.elf", "x" * room, aout=aout)
    with pytest.raises(EmitError, match=f"is {room + 1} bytes; syslinux passes at most {room}"):
        syslinux.config("kernel.elf", "x" * (room + 1), aout=aout)


def test_length_counts_bytes() -> None:
    """The limit is in UTF-8 bytes, not characters."""
    with pytest.raises(EmitError, match="is 2028 bytes"):
        syslinux.config("kernel.elf", "é" * 1014, aout=False)


def test_missing_file_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A missing file is an EmitError that says which Debian package provides it."""
    monkeypatch.setattr(syslinux, "SEARCH_DIRS", (tmp_path,))
    with pytest.raises(EmitError) as excinfo:
        syslinux.find_file("mboot.c32")
    assert excinfo.value.reason == "bootloader-missing"
    assert excinfo.value.hint == "install it: apt-get install syslinux-common"
    assert str(tmp_path) in str(excinfo.value)
    with pytest.raises(EmitError, match=r"isolinux\.bin") as excinfo:
        syslinux.find_file("isolinux.bin")
    assert excinfo.value.hint == "install it: apt-get install isolinux"


def test_extra_files_cannot_replace_loader_files() -> None:
    """An extra file named like a boot loader file is refused (names ignore case)."""
    with pytest.raises(EmitError) as excinfo:
        syslinux.check_extra_files([("/MBOOT.C32", b"")], ["mboot.c32"])
    assert excinfo.value.reason == "file-clash"
    syslinux.check_extra_files([("data/mboot.c32", b"")], ["mboot.c32"])


@pytest.mark.realtool("syslinux")
def test_installer_failure_is_reported(tmp_path: Path) -> None:
    """When the installer refuses the image, its own message and the command are in the detail."""
    image = tmp_path / "zeros.img"
    image.write_bytes(bytes(4 << 20))
    with pytest.raises(EmitError) as excinfo:
        syslinux.install(image, 0, epoch=0)
    assert excinfo.value.reason == "bootloader-failed"
    assert excinfo.value.detail is not None
    assert "not an FAT/NTFS volume" in excinfo.value.detail
    assert f"--offset 0 --install {image}" in excinfo.value.detail
