"""Booting a kernel, disk image or ISO under QEMU — or running a unikernel as a host
process (a Solo5 tender, a unix binary) — and reporting what happened.

A :class:`QemuLaunch` describes one boot; :func:`run` starts QEMU, streams
the guest's serial console (COM1) and returns a :class:`RunResult` with the
guest's exit status.  A guest reports its status in one of two ways:

* ``debug_exit``: it writes ``code`` to the isa-debug-exit port 0xf4, and
  QEMU exits with ``(code << 1) | 1``.
* ``exit_line``: it prints a line matching a regular expression whose group 1
  is the status, and keeps running (Rumprun halts without powering off), so
  the runner kills QEMU itself.

QEMU runs under TCG unless the launch or ``UKBUILD_QEMU_ACCEL`` says
otherwise: the CI machine's ``/dev/kvm`` is a software hypervisor on which
BIOS and boot-loader code hangs or crawls, so its mere presence is no reason
to use KVM.  The runner only ever kills the QEMU it started, by its process
handle, and always reaps it, including on KeyboardInterrupt.

A :class:`ProcessLaunch` runs a program instead of QEMU — ``solo5-hvt``/
``solo5-spt`` with the unikernel, or a MirageOS unix binary — whose exit
status is the guest's (Solo5 tenders exit with the ``solo5_exit`` status,
255 on abort).
"""

from __future__ import annotations

import os
import re
import selectors
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final, Literal

import attrs

from ukbuild.errors import RunError

ACCEL_ENV: Final = "UKBUILD_QEMU_ACCEL"
DEBUG_EXIT_PORT: Final = 0xF4
_INSTALL_HINT: Final = "install QEMU: apt-get install qemu-system-x86"
_TAIL_LINES: Final = 20


def _opt_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


def _drives(value: Iterable[Drive]) -> tuple[Drive, ...]:
    return tuple(value)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _opt_value(text: str) -> str:
    """Escape ``text`` for a QEMU ``key=value,...`` option (commas are doubled)."""
    return text.replace(",", ",,")


@attrs.frozen
class Drive:
    """A data disk attached to the guest.

    Writes go to a temporary overlay (``snapshot=on``) unless ``readonly``,
    so the file itself is never modified.
    """

    path: Path = attrs.field(converter=Path)
    interface: Literal["virtio", "ide"] = "virtio"
    format: str = "raw"
    readonly: bool = False

    def argv(self) -> tuple[str, ...]:
        """The ``-drive`` option for this disk."""
        mode = "readonly=on" if self.readonly else "snapshot=on"
        spec = f"file={_opt_value(os.fspath(self.path))},format={self.format},if={self.interface}"
        return ("-drive", f"{spec},{mode}")


@attrs.frozen
class QemuLaunch:
    """One boot: exactly one of ``kernel`` (Multiboot, with ``append``),
    ``disk`` (a raw BIOS-bootable image) or ``iso`` (an El Torito CD image).

    ``exit_line`` is a regular expression searched in each console line
    (without its line ending); its group 1 is the exit status.  ``accel``
    None means ``$UKBUILD_QEMU_ACCEL``, or ``tcg`` when that is unset.
    ``timeout`` is in seconds from the start of QEMU.
    """

    kernel: Path | None = attrs.field(default=None, converter=_opt_path)
    disk: Path | None = attrs.field(default=None, converter=_opt_path)
    iso: Path | None = attrs.field(default=None, converter=_opt_path)
    append: str = ""
    drives: tuple[Drive, ...] = attrs.field(default=(), converter=_drives)
    memory_mib: int = 128
    extra_args: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    exit_line: str | None = None
    debug_exit: bool = True
    accel: str | None = None
    timeout: float = 30.0
    qemu: str = "qemu-system-x86_64"

    def __attrs_post_init__(self) -> None:
        media = [name for name in ("kernel", "disk", "iso") if getattr(self, name) is not None]
        problem = None
        if len(media) != 1:
            problem = f"give exactly one of kernel, disk or iso (got {', '.join(media) or 'none'})"
        elif self.append and self.kernel is None:
            problem = "a command line (append) can only be given with a kernel"
        elif self.timeout <= 0:
            problem = f"timeout must be positive (got {self.timeout})"
        elif self.exit_line is not None:
            problem = _check_exit_line(self.exit_line)
        if problem:
            raise RunError(f"invalid QEMU launch: {problem}", reason="bad-launch")

    @property
    def boot_path(self) -> Path:
        """The kernel, disk or ISO that is booted."""
        path = self.kernel or self.disk or self.iso
        assert path is not None  # checked in __attrs_post_init__
        return path

    def resolved_accel(self) -> str:
        """The accelerator QEMU gets: the launch's, the environment's, or ``tcg``."""
        return self.accel or os.environ.get(ACCEL_ENV) or "tcg"

    def argv(self) -> tuple[str, ...]:
        """The complete QEMU command line."""
        args = [
            self.qemu,
            "-machine", "pc",
            "-m", str(self.memory_mib),
            "-display", "none",
            "-monitor", "none",
            "-serial", "stdio",
            "-nic", "none",
            "-no-reboot",
            "-accel", self.resolved_accel(),
        ]  # fmt: skip
        if self.debug_exit:
            args += ["-device", f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"]
        if self.kernel is not None:
            args += ["-kernel", os.fspath(self.kernel)]
            if self.append:
                args += ["-append", self.append]
        elif self.disk is not None:
            disk = _opt_value(os.fspath(self.disk))
            args += ["-drive", f"file={disk},format=raw,if=ide,index=0,snapshot=on"]
            args += ["-boot", "order=c"]
        elif self.iso is not None:
            args += ["-cdrom", os.fspath(self.iso), "-boot", "order=d"]
        for drive in self.drives:
            args += drive.argv()
        args += self.extra_args
        return tuple(args)


@attrs.frozen
class ProcessLaunch:
    """One run of a unikernel as a host process: ``argv[0]`` is the program (a Solo5
    tender, or the unix unikernel itself).

    ``guest_line`` is a regular expression that a line of standard output
    matches once the guest has started (e.g. the Solo5 bindings banner): a
    non-zero exit without it means the launcher refused to start the guest,
    and is a :class:`RunError` carrying its stderr rather than a guest status.
    ``timeout`` is in seconds from the start of the process.
    """

    argv: tuple[str, ...] = attrs.field(converter=_strings)
    guest_line: str | None = None
    timeout: float = 30.0

    def __attrs_post_init__(self) -> None:
        problem = None
        if not self.argv:
            problem = "argv is empty"
        elif self.timeout <= 0:
            problem = f"timeout must be positive (got {self.timeout})"
        elif self.guest_line is not None:
            try:
                re.compile(self.guest_line)
            except re.error as e:
                problem = f"guest_line {self.guest_line!r} is not a regular expression: {e}"
        if problem:
            raise RunError(f"invalid process launch: {problem}", reason="bad-launch")


def _check_exit_line(pattern: str) -> str | None:
    try:
        groups = re.compile(pattern).groups
    except re.error as e:
        return f"exit_line {pattern!r} is not a regular expression: {e}"
    if groups < 1:
        return f"exit_line {pattern!r} needs a group that captures the exit status"
    return None


@attrs.frozen
class RunResult:
    """What happened.

    ``status`` is the guest's exit status.  ``timed_out`` is only ever true
    for launches that give the guest no way to report a status (no
    ``debug_exit``, no ``exit_line``): such a run simply lasts ``timeout``
    seconds, and ``status`` is then -1.  ``seconds`` runs from the start of
    QEMU to its end.
    """

    status: int
    console: bytes
    timed_out: bool
    seconds: float


ConsoleSink = Callable[[bytes], None]


class _Console:
    """Collects serial output, forwards it, and watches for the exit line."""

    def __init__(self, exit_line: str | None, sink: ConsoleSink | None) -> None:
        self.data = bytearray()
        self._pattern = re.compile(exit_line) if exit_line is not None else None
        self._sink = sink
        self._line_start = 0

    def feed(self, chunk: bytes) -> re.Match[str] | None:
        self.data += chunk
        if self._sink is not None:
            self._sink(chunk)
        if self._pattern is None:
            return None
        while (end := self.data.find(b"\n", self._line_start)) >= 0:
            line = self.data[self._line_start : end].rstrip(b"\r").decode("utf-8", "replace")
            self._line_start = end + 1
            match = self._pattern.search(line)
            if match:
                return match
        return None

    def tail(self) -> str:
        lines = bytes(self.data).decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-_TAIL_LINES:]) or "(no console output)"


def _check_files(launch: QemuLaunch) -> None:
    named = [(kind, getattr(launch, kind)) for kind in ("kernel", "disk", "iso")]
    named += [("drive", d.path) for d in launch.drives]
    for kind, path in named:
        if path is not None and not path.is_file():
            msg = f"{kind} not found: {path}"
            hint = f"build the {kind} first, or check the path"
            raise RunError(msg, hint=hint, reason="file-not-found")


def _qemu_error(stderr: bytes) -> str | None:
    """QEMU's first error line, ignoring its warnings."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.strip() and ": warning:" not in line:
            return line.strip()
    return None


def run(launch: QemuLaunch | ProcessLaunch, *, console: ConsoleSink | None = None) -> RunResult:
    """Boot ``launch`` and wait until the guest reports its exit status.

    ``console`` receives the serial output (a process's stdout) as it arrives.
    A :class:`ProcessLaunch` is handled by :func:`run_process`.

    Raises:
        RunError: ``qemu-not-found``, ``file-not-found``, ``qemu-failed``
            (QEMU refused to start or crashed), ``timeout`` (detail: the
            last console lines) or ``no-exit-status`` (the guest stopped
            without reporting one).
    """
    if isinstance(launch, ProcessLaunch):
        return run_process(launch, console=console)
    argv = launch.argv()
    if shutil.which(launch.qemu) is None:
        msg = f"QEMU not found: {launch.qemu} is not on PATH"
        raise RunError(msg, hint=_INSTALL_HINT, reason="qemu-not-found")
    _check_files(launch)
    watcher = _Console(launch.exit_line, console)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as e:
        msg = f"cannot start {launch.qemu}: {e.strerror}"
        raise RunError(msg, hint=_INSTALL_HINT, reason="qemu-not-found") from e
    stderr = bytearray()
    timed_out = False
    try:
        match = _pump(proc, watcher, stderr, start + launch.timeout)
        if match is None:
            try:
                proc.wait(max(0.0, start + launch.timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    seconds = time.monotonic() - start
    if match is not None:
        return RunResult(_status_from(match, launch), bytes(watcher.data), False, seconds)
    if timed_out:
        return _timed_out(launch, watcher, seconds)
    return _classify(launch, proc.returncode, bytes(stderr), watcher, seconds)


def _pump(
    proc: subprocess.Popen[bytes], watcher: _Console, stderr: bytearray, deadline: float
) -> re.Match[str] | None:
    """Read QEMU's output until it closes its pipes, the exit line appears, or the deadline."""
    assert proc.stdout is not None and proc.stderr is not None  # both are pipes
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        selector.register(proc.stderr, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is proc.stdout:
                    match = watcher.feed(chunk)
                    if match is not None:
                        return match
                else:
                    stderr += chunk
    return None


def _status_from(match: re.Match[str], launch: QemuLaunch) -> int:
    value = match.group(1)
    if value is not None and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    msg = f"exit line {match.group(0)!r} matched, but its group 1 ({value!r}) is not an integer"
    hint = f"fix the exit_line pattern {launch.exit_line!r}"
    raise RunError(msg, hint=hint, reason="bad-launch")


def _timed_out(launch: QemuLaunch, watcher: _Console, seconds: float) -> RunResult:
    if not launch.debug_exit and launch.exit_line is None:
        return RunResult(-1, bytes(watcher.data), True, seconds)
    msg = f"{launch.boot_path}: the guest did not finish within {launch.timeout:g} s"
    raise RunError(
        msg,
        detail=watcher.tail(),
        hint="read the console output; raise the timeout if the guest is only slow",
        reason="timeout",
    )


def _classify(
    launch: QemuLaunch, rc: int, stderr: bytes, watcher: _Console, seconds: float
) -> RunResult:
    """Turn the way QEMU exited on its own into a result or an error.

    QEMU reports its own errors with status 1, which is also what a guest
    writing 0 to isa-debug-exit gives; stderr tells them apart.
    """
    error = _qemu_error(stderr)
    if rc & 1 and launch.debug_exit and (rc != 1 or error is None):
        return RunResult(rc >> 1, bytes(watcher.data), False, seconds)
    if rc != 0:
        reason = error or (f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}")
        output = stderr.decode("utf-8", "replace").strip()
        kind = "a Multiboot kernel" if launch.kernel else "a BIOS-bootable image"
        raise RunError(
            f"{launch.boot_path}: QEMU failed: {reason.removeprefix(launch.qemu + ': ')}",
            detail="\n".join(filter(None, [output, "command: " + shlex.join(launch.argv())])),
            hint=f"check that {launch.boot_path} is {kind} and that the QEMU options are valid",
            reason="qemu-failed",
        )
    if launch.debug_exit or launch.exit_line is not None:
        if launch.debug_exit:
            hint = f"the guest should write its status to isa-debug-exit port {DEBUG_EXIT_PORT:#x}"
        else:
            hint = f"the guest should print a line matching {launch.exit_line!r}"
        raise RunError(
            f"{launch.boot_path}: the guest stopped (powered off or reset) "
            "without reporting an exit status",
            detail=watcher.tail(),
            hint=hint,
            reason="no-exit-status",
        )
    return RunResult(0, bytes(watcher.data), False, seconds)


def run_process(launch: ProcessLaunch, *, console: ConsoleSink | None = None) -> RunResult:
    """Run ``launch.argv`` and return its exit status as the guest's.

    Raises:
        RunError: ``launcher-not-found`` (argv[0] is not a program),
            ``launch-failed`` (non-zero exit before ``guest_line`` appeared,
            or killed by a signal; detail: its stderr), ``timeout``.
    """
    program = launch.argv[0]
    if shutil.which(program) is None:
        raise RunError(f"cannot run {program}: not found or not executable",
                       hint="build it first, or install the program that runs it", reason="launcher-not-found")
    watcher = _Console(None, console)
    start = time.monotonic()
    proc = subprocess.Popen(launch.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr = bytearray()
    try:
        _pump(proc, watcher, stderr, start + launch.timeout)
        try:
            proc.wait(max(0.0, start + launch.timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RunError(f"{program}: the guest did not finish within {launch.timeout:g} s",
                           detail=watcher.tail(), hint="read the output; raise the timeout if it is only slow",
                           reason="timeout") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    seconds = time.monotonic() - start
    rc = proc.returncode
    text = bytes(watcher.data).decode("utf-8", "replace")
    started = launch.guest_line is None or re.search(launch.guest_line, text, re.M) is not None
    if rc < 0 or (rc != 0 and not started):
        errors = stderr.decode("utf-8", "replace").strip()
        first = errors.splitlines()[0] if errors else (f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}")
        raise RunError(
            f"{program} failed: {first}",
            detail="\n".join(filter(None, [errors, "command: " + shlex.join(launch.argv)])),
            hint="read the message above: a Solo5 tender refuses missing devices, a wrong ABI or a bad option",
            reason="launch-failed",
        )
    return RunResult(rc, bytes(watcher.data), False, seconds)
