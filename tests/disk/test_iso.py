"""ukbuild.disk.iso: El Torito ISOs with isolinux + mboot.c32, booted as CD-ROMs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ukbuild.disk import syslinux
from ukbuild.disk.iso import write_iso
from ukbuild.errors import EmitError
from ukbuild.runner import QemuLaunch, run

TOOLS = ("gcc", "ld", "xorriso")
QEMU = "qemu-system-x86_64"
DATA = b'{"data file": "on the ISO"}\n'


@pytest.mark.realtool(*TOOLS, QEMU)
@pytest.mark.parametrize("variant", ["i386", "x86_64"])
def test_boots_with_cmdline_verbatim(
    tmp_path: Path, hello_kernels: dict[str, bytes], cmdline: str, variant: str
) -> None:
    """isolinux + mboot.c32 boot the kernel from -cdrom with the command line byte for byte."""
    image = tmp_path / "hello.iso"
    write_iso(
        image, hello_kernels[variant], cmdline=cmdline, extra_files=[("data/conf.json", DATA)]
    )
    result = run(QemuLaunch(iso=image))
    lines = result.console.decode().split("\n")
    hello = lines.index("HELLO from ukbuild")
    assert lines[hello + 1].startswith("LOADER: ISOLINUX 6.")
    assert lines[hello + 2] == f"CMDLINE: kernel.elf {cmdline}"
    assert lines[hello + 3 :] == ["BYE", ""]
    assert result.status == 0


@pytest.mark.realtool(*TOOLS)
def test_contents(tmp_path: Path, hello_kernels: dict[str, bytes]) -> None:
    """The ISO holds the loader, the kernel and the extra files under their names."""
    image = tmp_path / "hello.iso"
    write_iso(image, hello_kernels["i386"], extra_files=[("data/Conf.json", DATA)])
    found = subprocess.run(
        ["xorriso", "-indev", image, "-find", "/", "-type", "f"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(found) == sorted(
        f"'/{name}'"
        for name in (
            "data/Conf.json",
            "isolinux.bin",
            "isolinux.cfg",
            "kernel.elf",
            "ldlinux.c32",
            "libcom32.c32",
            "mboot.c32",
        )
    )
    extracted = tmp_path / "conf.json"
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", image, "-extract", "/data/Conf.json", extracted],
        check=True,
        capture_output=True,
    )
    assert extracted.read_bytes() == DATA


@pytest.mark.realtool(*TOOLS)
def test_reproducible(tmp_path: Path, hello_kernels: dict[str, bytes], cmdline: str) -> None:
    """Two builds at different times, in other time zones, umasks and directories are identical."""
    kernel = tmp_path / "kernel.elf"
    kernel.write_bytes(hello_kernels["x86_64"])
    script = (
        "import os, sys; from pathlib import Path; from ukbuild.disk.iso import write_iso; "
        "os.umask(int(sys.argv[2], 8)); "
        "write_iso(sys.argv[1], Path(sys.argv[3]).read_bytes(), cmdline=sys.argv[4], "
        "extra_files=[('data/a.txt', b'a')], epoch=1700000000)"
    )
    outputs = []
    for i, (tz, umask) in enumerate([("UTC", "022"), ("Pacific/Kiritimati", "077")]):
        workdir = tmp_path / f"cwd{i}"
        workdir.mkdir()
        out = tmp_path / f"hello{i}.iso"
        env = {**os.environ, "TZ": tz, "SOURCE_DATE_EPOCH": str(1000000000 + i)}
        subprocess.run(
            [sys.executable, "-c", script, out, umask, kernel, cmdline],
            cwd=workdir,
            env=env,
            check=True,
        )
        outputs.append(out.read_bytes())
        if i == 0:
            time.sleep(1.1)
    assert outputs[0] == outputs[1]


class TestErrors:
    def test_not_multiboot(self, tmp_path: Path) -> None:
        """A kernel without a Multiboot header is refused; nothing is written."""
        with pytest.raises(EmitError) as excinfo:
            write_iso(tmp_path / "x.iso", bytes(100))
        assert excinfo.value.reason == "not-multiboot"
        assert os.listdir(tmp_path) == []

    def test_missing_isolinux(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hello_kernels: dict[str, bytes]
    ) -> None:
        """A missing isolinux.bin names the Debian package isolinux; nothing is written."""
        monkeypatch.setattr(syslinux, "SEARCH_DIRS", (Path("/usr/lib/syslinux/modules/bios"),))
        with pytest.raises(EmitError) as excinfo:
            write_iso(tmp_path / "x.iso", hello_kernels["i386"])
        assert excinfo.value.reason == "bootloader-missing"
        assert "isolinux.bin" in str(excinfo.value)
        assert excinfo.value.hint == "install it: apt-get install isolinux"
        assert os.listdir(tmp_path) == []

    def test_missing_xorriso(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hello_kernels: dict[str, bytes]
    ) -> None:
        """Without xorriso the error says how to install it."""
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        with pytest.raises(EmitError) as excinfo:
            write_iso(tmp_path / "x.iso", hello_kernels["i386"])
        assert excinfo.value.reason == "tool-not-found"
        assert excinfo.value.hint == "install it: apt-get install xorriso"
        assert os.listdir(tmp_path) == []

    @pytest.mark.parametrize(
        ("kwargs", "reason"),
        [
            ({"label": "lower"}, "bad-label"),
            ({"cmdline": "a --- b"}, "bad-cmdline"),
            ({"extra_files": [("isolinux.cfg", b"")]}, "file-clash"),
            ({"extra_files": [("a/../b", b"")]}, "bad-file-name"),
        ],
    )
    def test_refused(
        self,
        tmp_path: Path,
        hello_kernels: dict[str, bytes],
        kwargs: dict[str, object],
        reason: str,
    ) -> None:
        """Bad labels, command lines and file names are clear errors; nothing is written."""
        with pytest.raises(EmitError) as excinfo:
            write_iso(tmp_path / "x.iso", hello_kernels["i386"], **kwargs)  # type: ignore[arg-type]
        assert excinfo.value.reason == reason
        assert os.listdir(tmp_path) == []
