"""ukbuild.disk.rawdisk: MBR + FAT16 + syslinux images that boot Multiboot kernels under QEMU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ukbuild.disk import syslinux
from ukbuild.disk.rawdisk import write_raw_disk
from ukbuild.errors import EmitError
from ukbuild.runner import QemuLaunch, run

TOOLS = ("gcc", "ld", "syslinux")
QEMU = "qemu-system-x86_64"
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
EXTRA = [("data/config.jsn", b'{"port": 80}\n'), ("README", b"readme\n")]


def boot_lines(image: Path) -> tuple[int, list[str]]:
    result = run(QemuLaunch(disk=image))
    return result.status, result.console.decode().split("\n")


@pytest.mark.realtool(*TOOLS, QEMU)
@pytest.mark.parametrize("variant", ["i386", "x86_64"])
def test_boots_with_cmdline_verbatim(
    tmp_path: Path, hello_kernels: dict[str, bytes], cmdline: str, variant: str
) -> None:
    """syslinux + mboot.c32 boot the kernel and pass the JSON command line byte for byte."""
    image = tmp_path / "disk.img"
    write_raw_disk(image, hello_kernels[variant], cmdline=cmdline, extra_files=EXTRA)
    status, lines = boot_lines(image)
    assert status == 0
    hello = lines.index("HELLO from ukbuild")
    assert lines[hello + 1].startswith("LOADER: SYSLINUX 6.")
    assert lines[hello + 2] == f"CMDLINE: kernel.elf {cmdline}"
    assert lines[hello + 3 :] == ["BYE", ""]


@pytest.mark.realtool(*TOOLS, QEMU)
@pytest.mark.parametrize(("variant", "room"), [("i386", 2026), ("x86_64", 2020)])
def test_longest_cmdline_and_every_character(
    tmp_path: Path, hello_kernels: dict[str, bytes], variant: str, room: int
) -> None:
    """Every printable ASCII character passes unquoted, up to the longest line syslinux takes."""
    printable = "".join(chr(c) for c in range(0x21, 0x7F))
    long_line = (printable + " ") * (room // (len(printable) + 1))
    long_line += "x" * (room - len(long_line))
    assert len(long_line) == room
    image = tmp_path / "disk.img"
    write_raw_disk(image, hello_kernels[variant], cmdline=long_line)
    status, lines = boot_lines(image)
    assert f"CMDLINE: kernel.elf {long_line}" in lines
    assert status == 0


@pytest.mark.realtool(*TOOLS, "mtype", "mdir", "fsck.fat", "sfdisk")
def test_image_contents(tmp_path: Path, hello_kernels: dict[str, bytes]) -> None:
    """The image holds a clean FAT16 partition at 1 MiB with the loader, kernel and extra files."""
    image = tmp_path / "disk.img"
    kernel = hello_kernels["x86_64"]
    write_raw_disk(image, kernel, cmdline="a=b", extra_files=EXTRA, size_mib=12)
    assert image.stat().st_size == 12 << 20
    assert oct(image.stat().st_mode & 0o777) == oct(0o644)
    part = f"{image}@@1M"
    listing = subprocess.run(
        ["mdir", "-i", part, "-a", "-b", "::"], env=MTOOLS_ENV, check=True, capture_output=True
    ).stdout.decode()
    for name in ["ldlinux.sys", "ldlinux.c32", "mboot.c32", "libcom32.c32", "syslinux.cfg"]:
        assert f"::/{name}" in listing.lower()

    def mtype(path: str) -> bytes:
        cmd = ["mtype", "-i", part, f"::/{path}"]
        return subprocess.run(cmd, env=MTOOLS_ENV, check=True, capture_output=True).stdout

    assert mtype("kernel.elf") == kernel
    assert mtype("data/config.jsn") == EXTRA[0][1]
    assert b"APPEND -aout kernel.elf a=b\n" in mtype("syslinux.cfg")
    partition = tmp_path / "part.img"
    partition.write_bytes(image.read_bytes()[1 << 20 :])
    subprocess.run(["fsck.fat", "-n", partition], check=True, capture_output=True)
    table = subprocess.run(["sfdisk", "-d", image], check=True, capture_output=True, text=True)
    assert "start=        2048, size=       22528, type=e, bootable" in table.stdout


@pytest.mark.realtool(*TOOLS)
def test_reproducible(tmp_path: Path, hello_kernels: dict[str, bytes], cmdline: str) -> None:
    """Two builds at different times, in other time zones, umasks and directories are identical."""
    kernel = tmp_path / "kernel.elf"
    kernel.write_bytes(hello_kernels["x86_64"])
    script = (
        "import os, sys; from pathlib import Path; "
        "from ukbuild.disk.rawdisk import write_raw_disk; "
        "os.umask(int(sys.argv[2], 8)); "
        "write_raw_disk(sys.argv[1], Path(sys.argv[3]).read_bytes(), cmdline=sys.argv[4], "
        "extra_files=[('data/a.txt', b'a')], epoch=1700000000)"
    )
    outputs = []
    for i, (tz, umask) in enumerate([("UTC", "022"), ("Pacific/Kiritimati", "077")]):
        workdir = tmp_path / f"cwd{i}"
        workdir.mkdir()
        out = tmp_path / f"disk{i}.img"
        env = {**os.environ, "TZ": tz, "SOURCE_DATE_EPOCH": str(1000000000 + i)}
        subprocess.run(
            [sys.executable, "-c", script, out, umask, kernel, cmdline],
            cwd=workdir,
            env=env,
            check=True,
        )
        outputs.append(out.read_bytes())
        if i == 0:
            time.sleep(2.1)  # FAT times have a 2-second resolution
    assert outputs[0] == outputs[1]


class TestErrors:
    def test_not_multiboot(self, tmp_path: Path) -> None:
        """A kernel without a Multiboot header is refused before anything is written."""
        out = tmp_path / "disk.img"
        with pytest.raises(EmitError) as excinfo:
            write_raw_disk(out, b"\x7fELF" + bytes(9000))
        assert excinfo.value.reason == "not-multiboot"
        assert os.listdir(tmp_path) == []

    def test_missing_loader_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hello_kernels: dict[str, bytes]
    ) -> None:
        """A missing syslinux file names its Debian package; the old output stays untouched."""
        monkeypatch.setattr(syslinux, "SEARCH_DIRS", (tmp_path / "nowhere",))
        out = tmp_path / "disk.img"
        out.write_bytes(b"previous build")
        with pytest.raises(EmitError) as excinfo:
            write_raw_disk(out, hello_kernels["i386"])
        assert excinfo.value.reason == "bootloader-missing"
        assert "apt-get install syslinux-common" in str(excinfo.value.hint)
        assert out.read_bytes() == b"previous build"
        assert os.listdir(tmp_path) == ["disk.img"]

    def test_missing_installer(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hello_kernels: dict[str, bytes]
    ) -> None:
        """Without the syslinux installer nothing is left at the output, not even a temp file."""
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        out = tmp_path / "disk.img"
        with pytest.raises(EmitError) as excinfo:
            write_raw_disk(out, hello_kernels["i386"])
        assert excinfo.value.hint == "install it: apt-get install syslinux"
        assert os.listdir(tmp_path) == []

    def test_bad_cmdline(self, tmp_path: Path, hello_kernels: dict[str, bytes]) -> None:
        """A command line syslinux would change is refused; nothing is written."""
        with pytest.raises(EmitError) as excinfo:
            write_raw_disk(tmp_path / "disk.img", hello_kernels["i386"], cmdline="a  b")
        assert excinfo.value.reason == "bad-cmdline"
        assert os.listdir(tmp_path) == []

    def test_too_small(self, tmp_path: Path, hello_kernels: dict[str, bytes]) -> None:
        """A size that cannot hold the files is refused, suggesting a larger one."""
        with pytest.raises(EmitError) as excinfo:
            write_raw_disk(
                tmp_path / "disk.img",
                hello_kernels["i386"],
                size_mib=4,
                extra_files=[("big", bytes(3 << 20))],
            )
        assert excinfo.value.reason == "disk-full"
        assert os.listdir(tmp_path) == []

    def test_missing_output_directory(
        self, tmp_path: Path, hello_kernels: dict[str, bytes]
    ) -> None:
        """An output directory that does not exist is a clear error."""
        with pytest.raises(EmitError) as excinfo:
            write_raw_disk(tmp_path / "no" / "disk.img", hello_kernels["i386"])
        assert excinfo.value.reason == "output-error"

    def test_extra_file_clash(self, tmp_path: Path, hello_kernels: dict[str, bytes]) -> None:
        """Extra files cannot replace the kernel or the loader."""
        with pytest.raises(EmitError) as excinfo:
            write_raw_disk(
                tmp_path / "d.img", hello_kernels["i386"], extra_files=[("KERNEL.ELF", b"")]
            )
        assert excinfo.value.reason == "file-clash"
