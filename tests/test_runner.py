"""ukbuild.runner: QEMU command lines, exit statuses, timeouts and clean-up.

The guests here are tiny flat Multiboot kernels assembled by hand below, so
these tests need QEMU but no compiler.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from ukbuild.errors import RunError
from ukbuild.runner import Drive, QemuLaunch, RunResult, run

QEMU = "qemu-system-x86_64"
LOAD = 0x100000
ENTRY = LOAD + 32


def flat_kernel(text: bytes, *, exit_code: int | None = None, triple_fault: bool = False) -> bytes:
    """A Multiboot a.out-kludge kernel that writes ``text`` to COM1, then exits or halts.

    With ``exit_code`` it writes that byte to isa-debug-exit; with
    ``triple_fault`` it loads an empty IDT and traps, which resets the machine.
    """
    code_len = 5 + 5 + 4 + 1 + 2 + (4 if exit_code is not None else 0) + (8 if triple_fault else 4)
    msg = ENTRY + code_len
    code = b"\xbe" + struct.pack("<I", msg)  # mov esi, msg
    code += b"\xb9" + struct.pack("<I", len(text))  # mov ecx, len
    code += b"\x66\xba\xf8\x03"  # mov dx, 0x3f8
    code += b"\xfc\xf3\x6e"  # cld; rep outsb
    if exit_code is not None:
        code += b"\xb0" + bytes([exit_code]) + b"\xe6\xf4"  # mov al, code; out 0xf4, al
    if triple_fault:
        code += b"\x0f\x01\x1d" + struct.pack("<I", msg + len(text)) + b"\xcc"  # lidt; int3
    else:
        code += b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp to hlt
    assert len(code) == code_len
    body = code + text + bytes(8)  # 8 zero bytes: the empty IDT descriptor
    end = LOAD + 32 + len(body)
    flags = 1 << 16
    header = struct.pack(
        "<8I", 0x1BADB002, flags, -(0x1BADB002 + flags) & 0xFFFFFFFF, LOAD, LOAD, end, end, ENTRY
    )
    return header + body


def write_kernel(tmp_path: Path, name: str, text: bytes, **kwargs: object) -> Path:
    path = tmp_path / name
    path.write_bytes(flat_kernel(text, **kwargs))  # type: ignore[arg-type]
    return path


def children() -> list[int]:
    """PIDs of this process's live children (zombies included: they were not reaped)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid():
            found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes() -> object:
    before = set(children())
    yield
    assert set(children()) <= before, "a QEMU process was left behind"


class TestCommandLine:
    def test_kernel(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A kernel boot uses the recommended flags, TCG and isa-debug-exit."""
        monkeypatch.delenv("UKBUILD_QEMU_ACCEL", raising=False)
        argv = QemuLaunch(kernel="k.elf", append='{"a": 1, "b": "x y"}').argv()
        assert argv == (
            QEMU,
            "-machine", "pc",
            "-m", "128",
            "-display", "none",
            "-monitor", "none",
            "-serial", "stdio",
            "-nic", "none",
            "-no-reboot",
            "-accel", "tcg",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", "k.elf",
            "-append", '{"a": 1, "b": "x y"}',
        )  # fmt: skip

    def test_tcg_even_with_dev_kvm(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """/dev/kvm existing is no reason to use KVM; only the variable or the launch is."""
        monkeypatch.delenv("UKBUILD_QEMU_ACCEL", raising=False)
        assert QemuLaunch(kernel="k").resolved_accel() == "tcg"
        monkeypatch.setenv("UKBUILD_QEMU_ACCEL", "kvm")
        assert QemuLaunch(kernel="k").resolved_accel() == "kvm"
        assert QemuLaunch(kernel="k", accel="tcg").resolved_accel() == "tcg"

    def test_disk_iso_and_drives(self) -> None:
        """Disks run with snapshot=on; commas in paths are escaped for -drive."""
        argv = QemuLaunch(
            disk="a,b.img",
            drives=[Drive("data.img"), Drive("ro.iso", interface="ide", readonly=True)],
            debug_exit=False,
            extra_args=["-vga", "none"],
        ).argv()
        assert "isa-debug-exit" not in " ".join(argv)
        tail = argv[argv.index("-drive") :]
        assert tail == (
            "-drive", "file=a,,b.img,format=raw,if=ide,index=0,snapshot=on",
            "-boot", "order=c",
            "-drive", "file=data.img,format=raw,if=virtio,snapshot=on",
            "-drive", "file=ro.iso,format=raw,if=ide,readonly=on",
            "-vga", "none",
        )  # fmt: skip
        iso = QemuLaunch(iso="x.iso").argv()
        assert iso[iso.index("-cdrom") :] == ("-cdrom", "x.iso", "-boot", "order=d")

    @pytest.mark.parametrize(
        ("kwargs", "words"),
        [
            ({}, "exactly one of kernel, disk or iso (got none)"),
            ({"kernel": "k", "disk": "d"}, "got kernel, disk"),
            ({"disk": "d", "append": "x"}, "only be given with a kernel"),
            ({"kernel": "k", "exit_line": "("}, "not a regular expression"),
            ({"kernel": "k", "exit_line": "done"}, "needs a group"),
            ({"kernel": "k", "timeout": 0}, "timeout must be positive"),
        ],
    )
    def test_bad_launch(self, kwargs: dict[str, object], words: str) -> None:
        """A launch that cannot work is refused when it is described."""
        with pytest.raises(RunError) as excinfo:
            QemuLaunch(**kwargs)  # type: ignore[arg-type]
        assert excinfo.value.reason == "bad-launch"
        assert words in str(excinfo.value)


class TestErrorsBeforeStart:
    def test_qemu_missing(self, tmp_path: Path) -> None:
        """No QEMU: the hint says which Debian package to install."""
        kernel = write_kernel(tmp_path, "k", b"x")
        with pytest.raises(RunError) as excinfo:
            run(QemuLaunch(kernel=kernel, qemu="qemu-system-nosuch"))
        assert excinfo.value.reason == "qemu-not-found"
        assert excinfo.value.hint == "install QEMU: apt-get install qemu-system-x86"

    @pytest.mark.realtool(QEMU)
    @pytest.mark.parametrize("kind", ["kernel", "disk", "iso"])
    def test_file_missing(self, tmp_path: Path, kind: str) -> None:
        """A missing kernel, disk or ISO is named in the error."""
        with pytest.raises(RunError) as excinfo:
            run(QemuLaunch(**{kind: tmp_path / "nosuch"}))  # type: ignore[arg-type]
        assert excinfo.value.reason == "file-not-found"
        assert str(excinfo.value) == f"{kind} not found: {tmp_path / 'nosuch'}"

    @pytest.mark.realtool(QEMU)
    def test_drive_missing(self, tmp_path: Path) -> None:
        """A missing data drive is caught before QEMU starts."""
        kernel = write_kernel(tmp_path, "k", b"x")
        with pytest.raises(RunError, match="drive not found"):
            run(QemuLaunch(kernel=kernel, drives=[Drive(tmp_path / "data.img")]))


@pytest.mark.realtool(QEMU)
class TestBoot:
    def test_debug_exit_status(self, tmp_path: Path) -> None:
        """isa-debug-exit's (code << 1) | 1 comes back as code; the console is streamed."""
        kernel = write_kernel(tmp_path, "k", b"hello\nworld\n", exit_code=5)
        chunks: list[bytes] = []
        result = run(QemuLaunch(kernel=kernel), console=chunks.append)
        assert result.status == 5
        assert result.console == b"hello\nworld\n" == b"".join(chunks)
        assert not result.timed_out
        assert 0 < result.seconds < 30

    def test_exit_line(self, tmp_path: Path) -> None:
        """A guest that halts after printing its status is stopped by the runner."""
        kernel = write_kernel(
            tmp_path, "k", b'boot\r\n=== main() of "x" returned 7 ===\r\nhalted\r\n'
        )
        launch = QemuLaunch(
            kernel=kernel, debug_exit=False, exit_line=r'^=== main\(\) of ".*" returned (\d+) ===$'
        )
        result = run(launch)
        assert result.status == 7
        assert result.console.startswith(b'boot\r\n=== main() of "x" returned 7 ===\r\n')
        assert result.seconds < 10

    def test_timeout(self, tmp_path: Path) -> None:
        """A silent guest is stopped at the deadline; the error has the last 20 console lines."""
        text = b"".join(b"line %d\n" % i for i in range(30))
        kernel = write_kernel(tmp_path, "k", text)
        with pytest.raises(RunError) as excinfo:
            run(QemuLaunch(kernel=kernel, exit_line=r"^never (\d+)$", timeout=1.5))
        assert excinfo.value.reason == "timeout"
        assert excinfo.value.detail == "\n".join(f"line {i}" for i in range(10, 30))

    def test_fixed_duration(self, tmp_path: Path) -> None:
        """Without any exit signal, a run lasts the timeout and says it timed out."""
        kernel = write_kernel(tmp_path, "k", b"server up\n")
        result = run(QemuLaunch(kernel=kernel, debug_exit=False, timeout=1.0))
        assert result == RunResult(-1, b"server up\n", True, result.seconds)
        assert result.seconds >= 1.0

    def test_reset_without_status(self, tmp_path: Path) -> None:
        """A guest that resets (triple fault) instead of reporting is an error, not success."""
        kernel = write_kernel(tmp_path, "k", b"about to crash\n", triple_fault=True)
        with pytest.raises(RunError) as excinfo:
            run(QemuLaunch(kernel=kernel))
        assert excinfo.value.reason == "no-exit-status"
        assert excinfo.value.detail == "about to crash"

    def test_qemu_refuses_kernel(self, tmp_path: Path) -> None:
        """QEMU's own error (status 1) is not mistaken for a guest exit status of 0."""
        kernel = tmp_path / "elf64"
        no_kludge = struct.pack("<3I", 0x1BADB002, 0, -0x1BADB002 & 0xFFFFFFFF)
        kernel.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(57) + no_kludge + bytes(512))
        with pytest.raises(RunError) as excinfo:
            run(QemuLaunch(kernel=kernel))
        assert excinfo.value.reason == "qemu-failed"
        assert excinfo.value.detail is not None
        assert "QEMU failed: Error while loading elf kernel" in str(excinfo.value)
        assert "command: qemu-system-x86_64 " in excinfo.value.detail

    def test_guest_exit_zero(self, tmp_path: Path) -> None:
        """A guest exiting with 0 (QEMU status 1, no error) is a success."""
        kernel = write_kernel(tmp_path, "k", b"ok\n", exit_code=0)
        assert run(QemuLaunch(kernel=kernel)).status == 0

    def test_keyboard_interrupt_kills_qemu(self, tmp_path: Path) -> None:
        """Ctrl-C while a guest runs leaves no QEMU behind (checked by the fixture)."""
        kernel = write_kernel(tmp_path, "k", b"running\n")

        def interrupt(chunk: bytes) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run(QemuLaunch(kernel=kernel, debug_exit=False), console=interrupt)
