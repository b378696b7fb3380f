"""The fake Solo5 tools against the recorded contract (toolchain-contract.md §2), and the
same cases against the real tools when they are on PATH."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from backends.mirage.tests.helpers import TESTDATA
from tests.fakes.mirage import FakeMirage

V = "v0.12.1-7-g469c1a8"
CC = "x86_64-solo5-none-static-cc"
REAL = ("solo5-hvt", "solo5-spt", "solo5-elftool", CC)
ABIS = {"hvt": 2, "spt": 2, "virtio": 1, "muen": 4, "xen": 1}
APP = """#include "solo5.h"
int solo5_app_main(const struct solo5_start_info *si) { (void)si; return 0; }
"""
DEVICES = '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "storage", "type": "BLOCK_BASIC"}, ' \
          '{"name": "service0", "type": "NET_BASIC"}]}'


class Tools:
    """The Solo5 tools under test, in a scratch dir holding test_hello and a 2-device app per ABI."""

    def __init__(self, path: str, work: Path) -> None:
        self.env = {**os.environ, "PATH": path}
        self.work = work
        hello = TESTDATA / "test_hello"
        (work / "app.c").write_text(APP)
        (work / "devices.json").write_text(DEVICES)
        self.ok("solo5-elftool", "gen-manifest", str(hello / "manifest.json"), "manifest.c")
        self.ok("solo5-elftool", "gen-manifest", "devices.json", "devices.c")
        for source in (str(hello / "test_hello.c"), "manifest.c", "app.c", "devices.c"):
            self.ok(CC, "-std=c11", "-O2", "-c", source, "-o", Path(source).stem + ".o")
        for abi in (*ABIS, "stub"):
            self.ok(CC, "-z", f"solo5-abi={abi}", "test_hello.o", "manifest.o", "-o", f"test_hello.{abi}")
            self.ok(CC, "-z", f"solo5-abi={abi}", "app.o", "devices.o", "-o", f"app.{abi}")
        self.ok(CC, "-z", "solo5-abi=hvt", "app.o", "-o", "nomft.hvt")

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=60,
                              check=False)

    def ok(self, *argv: str) -> str:
        proc = self.run(*argv)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc.stdout


@pytest.fixture(scope="module", params=["fake", "real"])
def tools(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tools:
    if request.param == "real":
        missing = [t for t in REAL if shutil.which(t) is None]
        if missing:
            pytest.skip(f"real Solo5 tools not on PATH ({', '.join(missing)}): they cannot be installed on "
                        "this machine; the fake ran the same cases")
        return Tools(os.environ["PATH"], tmp_path_factory.mktemp("real-solo5"))
    fake: FakeMirage = request.getfixturevalue("fake")
    return Tools(f"{fake.bin_dir}{os.pathsep}{os.environ['PATH']}", tmp_path_factory.mktemp("fake-solo5"))


class TestTenders:
    @pytest.mark.parametrize("tender", ["solo5-hvt", "solo5-spt"])
    def test_version_on_stderr(self, tools: Tools, tender: str) -> None:
        proc = tools.run(tender, "--version")
        assert (proc.returncode, proc.stdout) == (0, "")
        assert proc.stderr.splitlines() == [f"{tender} tender, version {V}", "ABI version 2"]

    def test_usage(self, tools: Tools) -> None:
        none, help_ = tools.run("solo5-hvt"), tools.run("solo5-hvt", "--help")
        assert (none.returncode, help_.returncode) == (1, 1)
        assert none.stderr.splitlines()[:2] == [
            "solo5-hvt: Missing KERNEL operand",
            "usage: solo5-hvt [ CORE OPTIONS ] [ MODULE OPTIONS ] [ -- ] KERNEL [ ARGS ]"]
        assert "Compiled-in modules: core block net \n" in help_.stderr
        spt = tools.run("solo5-spt", "--help").stderr
        assert spt.startswith("usage: solo5-spt [ CORE OPTIONS ] [ -- ] KERNEL [ ARGS ]\n")
        assert "--x-exec-heap" in spt and "--version" not in spt

    @pytest.mark.parametrize("tender", ["hvt", "spt"])
    def test_hello(self, tools: Tools, tender: str) -> None:
        proc = tools.run(f"solo5-{tender}", f"test_hello.{tender}", "Hello_Solo5")
        lines = proc.stdout.splitlines()
        assert proc.returncode == 0
        assert lines[:6] == ["            |      ___|", "  __|  _ \\  |  _ \\ __ \\", "\\__ \\ (   | | (   |  ) |",
                             "____/\\___/ _|\\___/____/", f"Solo5: Bindings version {V}",
                             "Solo5: Memory map: 512 MB addressable:"]
        assert lines[-4:] == ["Hello, World", "Command line is: 'Hello_Solo5'", "SUCCESS",
                              "Solo5: solo5_exit(0) called"]

    def test_memory_arguments_and_status(self, tools: Tools) -> None:
        proc = tools.run("solo5-spt", "--mem=64", "--", "test_hello.spt", "a", "b")
        assert "Solo5: Memory map: 64 MB addressable:" in proc.stdout
        assert "Command line is: 'a b'" in proc.stdout
        assert proc.stdout.endswith("Solo5: solo5_exit(3) called\n")
        assert proc.returncode == 3

    @pytest.mark.parametrize(("argv", "stderr"), [
        (["solo5-hvt", "test_hello.spt"], ["solo5-hvt: test_hello.spt: Executable is not for the solo5-hvt target"]),
        (["solo5-hvt", "test_hello.virtio"],
         ["solo5-hvt: test_hello.virtio: Executable is not for the solo5-hvt target"]),
        (["solo5-spt", "test_hello.hvt"], ["solo5-spt: test_hello.hvt: Executable is not for the solo5-spt target"]),
        (["solo5-hvt", "nosuch.hvt"], ["solo5-hvt: nosuch.hvt: Could not open: No such file or directory"]),
        (["solo5-hvt", "/bin/true"], ["solo5-hvt: /bin/true: invalid executable: invalid or unsupported executable "
                                      "(elf header invalid while loading note)"]),
        (["solo5-hvt", "--mem=0", "test_hello.hvt"], ["solo5-hvt: Malformed argument to --mem"]),
        (["solo5-hvt", "app.hvt"], ["solo5-hvt: Device 'storage' of type BLOCK_BASIC declared but not attached.",
                                    "solo5-hvt: All declared devices must be attached. See --help for syntax."]),
        (["solo5-spt", "--block:storage=disk.img", "app.spt"],
         ["solo5-spt: Device 'service0' of type NET_BASIC declared but not attached.",
          "solo5-spt: All declared devices must be attached. See --help for syntax."]),
        (["solo5-hvt", "--block:storage=nosuch.img", "app.hvt"],
         ["solo5-hvt: Could not open block device: nosuch.img: No such file or directory"]),
    ])
    def test_refusals(self, tools: Tools, argv: list[str], stderr: list[str]) -> None:
        (tools.work / "disk.img").write_bytes(bytes(1024))
        proc = tools.run(*argv)
        assert (proc.returncode, proc.stdout) == (1, "")
        assert proc.stderr.splitlines() == stderr

    @pytest.mark.parametrize(("option", "first"), [
        ("--block:other=disk.img", "solo5-hvt: Resource not declared in manifest: 'other'"),
        ("--net:service0=tapXYZ", "solo5-hvt: Could not attach interface: tapXYZ: No such file or directory"),
        ("--block-sector-size:storage=100",
         "solo5-hvt: Block size must be a multiple of 2 greater than or equal 512"),
    ])
    def test_bad_module_options(self, tools: Tools, option: str, first: str) -> None:
        (tools.work / "disk.img").write_bytes(bytes(1024))
        proc = tools.run("solo5-hvt", option, "app.hvt")
        lines = proc.stderr.splitlines()
        assert proc.returncode == 1
        assert lines[:3] == [first, f"solo5-hvt: Invalid option: `{option}'", lines[2]]
        assert lines[2].startswith("usage: solo5-hvt")

    def test_binary_without_manifest(self, tools: Tools) -> None:
        proc = tools.run("solo5-hvt", "nomft.hvt")
        assert proc.returncode == 1
        assert "p_filesz note does not fall within valid size (0 < 12)" in proc.stderr


class TestElftool:
    @pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["frob"]])
    def test_usage(self, tools: Tools, argv: list[str]) -> None:
        proc = tools.run("solo5-elftool", *argv)
        assert (proc.returncode, proc.stdout) == (1, "")
        assert proc.stderr.splitlines()[:2] == ["usage: solo5-elftool COMMAND ...", f"solo5-elftool version {V}"]

    @pytest.mark.parametrize(("abi", "version"), ABIS.items())
    def test_query_abi(self, tools: Tools, abi: str, version: int) -> None:
        assert tools.ok("solo5-elftool", "query-abi", f"test_hello.{abi}") == (
            f'{{\n  "type": "solo5.abi",\n  "target": "{abi}",\n  "version": {version}\n}}\n')

    def test_query_manifest(self, tools: Tools) -> None:
        empty = tools.ok("solo5-elftool", "query-manifest", "test_hello.hvt")
        assert empty == '{\n  "type": "solo5.manifest",\n  "version": 1,\n  "devices": [\n  ]\n}\n'
        assert len(empty) == 67
        assert tools.ok("solo5-elftool", "query-manifest", "app.spt") == (
            '{\n  "type": "solo5.manifest",\n  "version": 1,\n  "devices": [\n'
            '    { "name": "storage", "type": "BLOCK_BASIC" },\n    { "name": "service0", "type": "NET_BASIC" }\n'
            "  ]\n}\n")

    def test_gen_manifest(self, tools: Tools) -> None:
        text = (tools.work / "devices.c").read_text()
        assert text.splitlines()[0] == f"/* Generated by solo5-elftool version {V}, do not edit */"
        assert "#define MFT_ENTRIES 3" in text and "MFT1_NOTE_DECLARE_BEGIN" in text
        (tools.work / "foo.json").write_text('{"type": "solo5.manifest", "version": 1, '
                                             '"devices": [{"name": "x", "type": "FOO"}]}')
        tools.ok("solo5-elftool", "gen-manifest", "foo.json", "foo.c")
        assert "MFT_DEV_FOO" in (tools.work / "foo.c").read_text()

    @pytest.mark.parametrize(("argv", "files", "message"), [
        (["gen-manifest", "nosuch.json", "x.c"], {}, "nosuch.json: Could not open for reading: No such file or directory"),
        (["gen-manifest", "bad.json", "x.c"], {"bad.json": '{"type": "solo5.manifest", "version": 1, '
                                                           '"devices": [{"name": "a-b", "type": "NET_BASIC"}]}'},
         "bad.json:1: .devices[...]: name is not alphanumeric"),
        (["gen-manifest", "badver.json", "x.c"], {"badver.json": '{"type": "solo5.manifest", "version": 2, '
                                                                 '"devices": []}'},
         "badver.json:1: .version: invalid version 2, expected 1"),
        (["query-abi", "nosuch"], {}, "nosuch: Could not open: No such file or directory"),
        (["query-abi", "/bin/true"], {}, "/bin/true: invalid executable: invalid or unsupported executable "
                                         "(elf header invalid while loading note)"),
        (["query-abi", "app.o"], {}, "app.o: invalid executable: invalid or unsupported executable "
                                     "(elf header invalid while loading note)"),
    ])
    def test_errors(self, tools: Tools, argv: list[str], files: dict[str, str], message: str) -> None:
        for name, text in files.items():
            (tools.work / name).write_text(text)
        proc = tools.run("solo5-elftool", *argv)
        assert proc.returncode == 1
        assert proc.stderr.splitlines() == [f"solo5-elftool: {message}"]

    def test_stub_has_no_abi_note(self, tools: Tools) -> None:
        proc = tools.run("solo5-elftool", "query-abi", "test_hello.stub")
        assert proc.returncode == 1
        assert "invalid executable: phdr[" in proc.stderr
        assert "].p_filesz note does not fall within valid size (0 < 12)" in proc.stderr


def notes(data: bytes) -> list[tuple[bytes, int]]:
    """(owner, type) of every note in the PT_NOTE segments."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    found = []
    for i in range(phnum):
        p_type, _f, off, _v, _p, size = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        pos = off
        while p_type == 4 and pos + 12 <= off + size:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            found.append((data[pos + 12 : pos + 12 + namesz].rstrip(b"\0"), ntype))
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return found


class TestCompiler:
    def test_driver_answers(self, tools: Tools) -> None:
        none = tools.run(CC)
        assert (none.returncode, none.stdout) == (1, f"{CC}: No input files. Compilation terminated.\n")
        assert tools.ok(CC, "-dumpmachine") == "x86_64-linux-gnu\n"
        assert tools.ok(CC, "--version").startswith("cc (")

    def test_unknown_abi(self, tools: Tools) -> None:
        proc = tools.run(CC, "-z", "solo5-abi=bogus", "app.o", "devices.o", "-o", "app.bogus")
        assert proc.returncode == 1
        assert "cannot open linker script file solo5_bogus.lds: No such file or directory" in proc.stderr

    @pytest.mark.parametrize("abi", [*ABIS, "stub"])
    def test_executables(self, tools: Tools, abi: str) -> None:
        data = (tools.work / f"test_hello.{abi}").read_bytes()
        assert data[:4] == b"\x7fELF" and struct.unpack_from("<H", data, 16)[0] == 2
        assert b"/nonexistent/solo5/\0" in data
        expected = [(b"Solo5", 0x3154464D)] + ([] if abi == "stub" else [(b"Solo5", 0x31494241), (b"OpenBSD", 1)])
        assert sorted(notes(data)) == sorted(expected)
        magic = data.find(struct.pack("<I", 0x1BADB002), 0, 8192)
        if abi in ("virtio", "xen"):
            assert magic == {"virtio": 0x1020, "xen": 0x1000}[abi]
            assert struct.unpack_from("<I", data, magic + 4)[0] == 0x00010003
        else:
            assert magic == -1


@pytest.mark.realtool("qemu-system-x86_64")
class TestVirtioBoot:
    """toolchain-contract.md §2.5, "Virtio boot results (TCG)": the direct QEMU command."""

    QEMU = ("qemu-system-x86_64", "-accel", "tcg", "-cpu", "Westmere", "-m", "128", "-nodefaults", "-machine",
            "acpi=off", "-display", "none", "-serial", "stdio")

    def test_status_83_and_the_lines(self, tools: Tools) -> None:
        hello = tools.run(*self.QEMU, "-device", "isa-debug-exit", "-kernel", "test_hello.virtio",
                          "-append", "Hello_Solo5")
        lines = hello.stdout.splitlines()
        assert hello.returncode == 83
        assert lines[0] == f"Solo5: Bindings version {V}"
        assert lines[1] == "Solo5: Memory map: 128 MB addressable:"
        assert any(line.startswith("Solo5: Clock source: TSC, frequency estimate is ") for line in lines)
        assert lines[-4:] == ["Hello, World", "Command line is: 'Hello_Solo5'", "SUCCESS",
                              "Solo5: solo5_exit(0) called"]

    def test_declared_devices_must_be_attached(self, tools: Tools) -> None:
        """app.virtio declares storage (block) and service0 (net): with only the disk, it aborts."""
        (tools.work / "disk.img").write_bytes(bytes(1 << 20))
        proc = tools.run(*self.QEMU, "-device", "isa-debug-exit", "-drive", "id=drive2,file=disk.img,if=none,"
                         "format=raw", "-device", "virtio-blk,drive=drive2,addr=0x2,bus=pci.0",
                         "-kernel", "app.virtio", "-append", "3 x,y")
        assert proc.returncode == 83
        assert proc.stdout.splitlines()[-4:] == [
            "Solo5: PCI:00:02: virtio-block device, base=0xc000, irq=10",
            "Solo5: PCI:00:02: configured, capacity=2048 sectors, features=0x79006e54",
            "Solo5: Device 'service0' of type NET_BASIC not attached.Solo5: All declared devices must be "
            "attached. Aborting.",
            "Solo5: solo5_abort() called"]

    def test_a_device_the_manifest_lacks(self, tools: Tools) -> None:
        (tools.work / "disk.img").write_bytes(bytes(1 << 20))
        proc = tools.run(*self.QEMU, "-device", "isa-debug-exit", "-drive", "id=drive2,file=disk.img,if=none,"
                         "format=raw", "-device", "virtio-blk,drive=drive2,addr=0x4,bus=pci.0",
                         "-kernel", "test_hello.virtio", "-append", "x")
        assert proc.returncode == 83
        assert proc.stdout.splitlines()[-3:] == ["Solo5: Virtio blk: PCI:00:04 not in manifest",
                                                 "PCI enumeration failed. Aborting.", "Solo5: solo5_abort() called"]

    def test_halts_without_isa_debug_exit(self, tools: Tools) -> None:
        """The guest never powers off: QEMU is still running when the timeout kills it."""
        with pytest.raises(subprocess.TimeoutExpired) as expired:
            subprocess.run([*self.QEMU, "-kernel", "test_hello.virtio", "-append", "Hello_Solo5"], cwd=tools.work,
                           env=tools.env, capture_output=True, timeout=3, check=False)
        lines = (expired.value.stdout or b"").decode().splitlines()
        after = lines[lines.index("Solo5: solo5_exit(0) called") + 1 :]
        assert after[-1:] == ["Solo5: Halted"]  # the real bindings first say "Solo5: ACPI: RSDP not found, …"
