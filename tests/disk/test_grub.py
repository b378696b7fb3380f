"""Raw disks booted by GRUB (``bootloader="grub"``): QEMU shows GRUB's loader name and the
command line byte for byte for a line GRUB can pass; lines GRUB would re-quote are refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ukbuild.disk import grub
from ukbuild.disk.rawdisk import PARTITION_START, write_raw_disk
from ukbuild.errors import EmitError
from ukbuild.runner import QemuLaunch, run

TOOLS = ("gcc", "ld", "grub-mkimage")
QEMU = "qemu-system-x86_64"
#: Over 1 KiB of what GRUB passes unchanged: every printable ASCII character but \ ' " $, and UTF-8.
SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in grub.SPECIAL)
GRUB_CMDLINE = " ".join([f"key{i}=value,with,commas;{{braces}}(parens)#hash<>|&" for i in range(24)] + [SAFE, "grüße ✓"])
EXTRA = [("data/config.jsn", b'{"port": 80}\n')]


@pytest.mark.realtool(*TOOLS, QEMU)
@pytest.mark.parametrize("variant", ["i386", "x86_64"])
def test_boots_with_cmdline_byte_for_byte(tmp_path: Path, hello_kernels: dict[str, bytes], variant: str) -> None:
    assert len(GRUB_CMDLINE.encode()) >= 1024
    image = tmp_path / "disk.img"
    write_raw_disk(image, hello_kernels[variant], cmdline=GRUB_CMDLINE, bootloader="grub", extra_files=EXTRA)
    result = run(QemuLaunch(disk=image, timeout=60))
    lines = result.console.decode().split("\n")
    hello = lines.index("HELLO from ukbuild")
    assert lines[hello + 1].startswith("LOADER: GRUB 2.")
    assert lines[hello + 2] == f"CMDLINE: kernel.elf {GRUB_CMDLINE}"
    assert result.status == 0


@pytest.mark.realtool(*TOOLS, "sfdisk", "fsck.fat", "mtype")
def test_layout_and_same_bytes_twice(
    tmp_path: Path, hello_kernels: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """boot.img in the MBR, the core image right after it, a clean FAT with the kernel; reproducible.

    The serial console shows nothing of GRUB's (``terminfo serial dumb``): the
    boot test above finds the kernel's first line at a line start.
    """
    kernel = hello_kernels["i386"]
    images = [tmp_path / "a.img", tmp_path / "b.img"]
    for image, tz in zip(images, ("UTC", "Pacific/Kiritimati"), strict=True):
        monkeypatch.setenv("TZ", tz)
        write_raw_disk(image, kernel, cmdline="a=b", bootloader="grub", extra_files=EXTRA, size_mib=8)
    data = images[0].read_bytes()
    assert data == images[1].read_bytes()
    assert data[:440] == grub.boot_image()[:440]
    diskboot = (grub.MODULE_DIR / "diskboot.img").read_bytes()
    assert data[512:1012] == diskboot[:500]  # grub-mkimage fills in the blocklist at its end
    table = subprocess.run(["sfdisk", "-d", str(images[0])], capture_output=True, text=True, check=True).stdout
    assert f"start=        {PARTITION_START}" in table and "bootable" in table
    partition = tmp_path / "part.img"
    partition.write_bytes(data[PARTITION_START * 512 :])
    subprocess.run(["fsck.fat", "-n", str(partition)], capture_output=True, check=True)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    typed = subprocess.run(["mtype", "-i", str(partition), "::/kernel.elf"], capture_output=True, env=env, check=True)
    assert typed.stdout == kernel


@pytest.mark.parametrize(("cmdline", "problem"), [
    ('{"cmdline":"hello"}', 'it contains ", which GRUB interprets or re-quotes'),
    ("a\\b", "it contains \\"),
    ("it's", "it contains '"),
    ("$HOME", "it contains $"),
    ("a  b", "repeated spaces"),
    (" a", "leading"),
    ("a\tb", "control character"),
])  # fmt: skip
@pytest.mark.realtool("gcc", "ld")
def test_refuses_what_grub_would_change(
    tmp_path: Path, hello_kernels: dict[str, bytes], cmdline: str, problem: str
) -> None:
    out = tmp_path / "disk.img"
    with pytest.raises(EmitError) as excinfo:
        write_raw_disk(out, hello_kernels["i386"], cmdline=cmdline, bootloader="grub")
    assert excinfo.value.reason == "bad-cmdline"
    assert "cannot pass through GRUB unchanged" in excinfo.value.message and problem in excinfo.value.message
    assert "syslinux" in (excinfo.value.hint or "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.realtool("gcc", "ld")
def test_missing_grub_files_name_the_package(
    tmp_path: Path, hello_kernels: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grub, "MODULE_DIR", tmp_path / "nowhere")
    with pytest.raises(EmitError) as excinfo:
        write_raw_disk(tmp_path / "disk.img", hello_kernels["i386"], bootloader="grub")
    assert excinfo.value.reason == "bootloader-missing"
    assert "apt-get install grub-pc-bin" in (excinfo.value.hint or "")
    assert not (tmp_path / "disk.img").exists()
