"""The Multiboot runtime: it builds with the host tools, is a Multiboot kernel, and boots."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ukbuild_multiboot.compile import kernel_commands, runtime_sources
from ukbuild.multiboot import check_multiboot

from ukbuild.runner import QemuLaunch, run

TOOLS = ("gcc", "ld")
QEMU = "qemu-system-x86_64"

# Over 1 KiB, with commas, double quotes, spaces, backslashes and a Rumprun-like shape.
CMDLINE = json.dumps(
    {
        "cmdline": 'hello.bin "quoted arg" a,b,c',
        "env": [f'VAR{i}=value, with spaces and a "quote" #{i}' for i in range(20)],
        "blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/data"},
        "net": {"if": "vioif0", "type": "inet", "method": "static", "addr": "10.0.2.15"},
        "path": "C:\\dir\\file",
    }
)


def test_command_line_is_long_and_awkward() -> None:
    """The test command line exercises what boot loaders tend to mangle."""
    assert len(CMDLINE) >= 1024
    assert all(c in CMDLINE for c in ',"\\ ')


class TestCompile:
    def test_commands_are_plain_data(self, tmp_path: Path) -> None:
        """kernel_commands() returns argv tuples of strings, one compile per source."""
        commands = kernel_commands("x86_64", ("app.c",), tmp_path, tmp_path / "k.elf")
        assert len(commands.compile) == len(runtime_sources("x86_64")) + 1
        for argv in (*commands.compile, commands.link):
            assert isinstance(argv, tuple)
            assert all(isinstance(arg, str) for arg in argv)
        assert commands.link[-len(commands.objects) :] == commands.objects
        assert "-mno-red-zone" in commands.compile[0]
        assert commands.link[:3] == ("ld", "-m", "elf_x86_64")

    def test_same_stems_do_not_collide(self, tmp_path: Path) -> None:
        """An application file named like a runtime file gets its own object."""
        commands = kernel_commands("i386", ("app/kernel.c",), tmp_path, tmp_path / "k.elf")
        assert len(set(commands.objects)) == len(commands.objects)

    def test_unknown_variant(self, tmp_path: Path) -> None:
        """An unknown variant is a programming error naming the valid ones."""
        with pytest.raises(ValueError, match="i386, x86_64"):
            kernel_commands("arm64", (), tmp_path, tmp_path / "k.elf")  # type: ignore[arg-type]


@pytest.mark.realtool(*TOOLS)
class TestBuild:
    def test_i386_is_elf32_multiboot(self, hello_kernels: dict[str, Path]) -> None:
        """The i386 kernel is an ELF32 Multiboot kernel without the a.out kludge."""
        header = check_multiboot(hello_kernels["i386"].read_bytes())
        assert header.elf_class == 32
        assert header.aout is None
        assert header.qemu_loadable

    def test_x86_64_is_elf64_with_aout_kludge(self, hello_kernels: dict[str, Path]) -> None:
        """The x86_64 kernel is ELF64 whose kludge loads the file at 1 MiB."""
        data = hello_kernels["x86_64"].read_bytes()
        header = check_multiboot(data)
        assert header.elf_class == 64
        assert header.aout is not None
        assert header.aout.load_addr == 0x100000
        assert header.aout.load_addr <= header.aout.entry_addr < header.aout.load_end_addr
        assert header.aout.bss_end_addr > header.aout.load_end_addr
        assert header.qemu_loadable

    @pytest.mark.realtool("grub-file")
    @pytest.mark.parametrize("variant", ["i386", "x86_64"])
    def test_grub_agrees(self, hello_kernels: dict[str, Path], variant: str) -> None:
        """GRUB's own checker accepts both kernels."""
        subprocess.run(["grub-file", "--is-x86-multiboot", hello_kernels[variant]], check=True)

    @pytest.mark.parametrize("variant", ["i386", "x86_64"])
    def test_reproducible(
        self, hello_builder: Callable[[str, Path], Path], tmp_path: Path, variant: str
    ) -> None:
        """Two builds in different directories give identical kernels."""
        first = hello_builder(variant, tmp_path / "a")
        second = hello_builder(variant, tmp_path / "b" / "deeper")
        assert first.read_bytes() == second.read_bytes()


@pytest.mark.realtool(*TOOLS, QEMU)
@pytest.mark.parametrize("variant", ["i386", "x86_64"])
def test_boots_under_qemu(hello_kernels: dict[str, Path], variant: str) -> None:
    """Booted with -kernel, the app sees QEMU's loader name and the command line verbatim."""
    kernel = hello_kernels[variant]
    result = run(QemuLaunch(kernel=kernel, append=CMDLINE))
    assert result.console.decode().split("\n") == [
        "HELLO from ukbuild",
        "LOADER: qemu",
        f"CMDLINE: {kernel} {CMDLINE}",  # QEMU prepends the kernel path as given
        "BYE",
        "",
    ]
    assert result.status == 0
    assert not result.timed_out
