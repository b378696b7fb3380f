"""``ukbuild run APP``: every service under QEMU on the app's private network.

The VMs share one Ethernet segment through :class:`~ukbuild.app.network.Hub`
(QEMU ``dgram`` netdevs on Unix sockets in a private temporary directory):
no root, no tap device, no host address besides 127.0.0.1, where the
published ports listen (a gateway QEMU's user-mode ``hostfwd``, ``restrict=on``).
Services start in link order; everything is stopped on exit, on an error
and on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ukbuild.errors import RunError

from . import network
from .build import AppBuildResult, ServicePlan, guest_launch
from .model import App

ConsoleSink = Callable[[str, bytes], None]


@attrs.frozen
class GuestCommand:
    service: str
    argv: tuple[str, ...]
    append: str


def guest_commands(app: App, plans: Mapping[str, ServicePlan], built: AppBuildResult, sock_dir: str,
                   *, accel: str | None = None) -> list[GuestCommand]:
    """The QEMU command line of every service, in start order."""
    endpoints = network.plan(app)
    commands = []
    for name in app.order():
        plan = plans[name]
        service = plan.service
        volume_paths = [built.volumes[v.image] if v.from_app else
                        built.out_dir / "services" / name / plan.project.images[v.image].output  # type: ignore[union-attr]
                        for v in service.volumes]
        launch, append = guest_launch(app, plan, endpoints[name], built.kernels[name], volume_paths,
                                      initrd=service.initrd)
        if accel:
            launch = attrs.evolve(launch, accel=accel)
        net = network.qemu_net_args(app, service, endpoints[name], sock_dir) if plan.networked else []
        argv = (*launch.argv(), *net)  # type: ignore[attr-defined]
        commands.append(GuestCommand(name, argv, append))
    return commands


class AppRun:
    """The running app: a hub and one QEMU per service.  Use as a context manager."""

    def __init__(self, app: App, plans: Mapping[str, ServicePlan], built: AppBuildResult, *,
                 console: ConsoleSink | None = None, accel: str | None = None) -> None:
        self.app = app
        self._console = console
        self._dir = tempfile.mkdtemp(prefix="ukb-app-", dir="/tmp")
        try:
            self.commands = guest_commands(app, plans, built, self._dir, accel=accel)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.hub: network.Hub | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.output: dict[str, bytearray] = {c.service: bytearray() for c in self.commands}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def __enter__(self) -> AppRun:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        qemu = self.commands[0].argv[0] if self.commands else "qemu-system-x86_64"
        if shutil.which(qemu) is None:
            raise RunError(f"QEMU not found: {qemu} is not on PATH", hint="apt-get install qemu-system-x86",
                           reason="qemu-not-found")
        self.hub = network.Hub(self._dir)
        gateway = network.gateway_argv(self.app, self._dir, qemu)
        if gateway is not None:
            self.gateway = subprocess.Popen(gateway, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, start_new_session=True)
            try:
                _, errors = self.gateway.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass  # running
            else:
                raise RunError(f"the app's gateway (QEMU user-mode network) failed: {errors.decode().strip()}",
                               detail="command: " + shlex.join(gateway),
                               hint="check that no other program listens on the published ports", reason="qemu-failed")
        for command in self.commands:
            proc = subprocess.Popen(command.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            self.procs[command.service] = proc
            thread = threading.Thread(target=self._pump, args=(command.service, proc), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, service: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 65536):
            with self._changed:
                self.output[service] += chunk
                self._changed.notify_all()
            if self._console is not None:
                self._console(service, chunk)
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, service: str, pattern: str, timeout: float) -> re.Match[bytes] | None:
        """Wait until ``service``'s console matches ``pattern`` (or it stops, or the timeout)."""
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = regex.search(bytes(self.output[service]))
                if match or self.procs[service].poll() is not None:
                    return match or regex.search(bytes(self.output[service]))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.5))

    def wait(self, timeout: float | None = None) -> dict[str, int]:
        """Wait until every guest has stopped; their QEMU exit statuses."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for proc in self.procs.values():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            proc.wait(remaining)
        return {name: proc.returncode for name, proc in self.procs.items()}

    def check_started(self, service: str) -> None:
        """Raise the QEMU error of a service whose QEMU refused to start."""
        proc = self.procs[service]
        if proc.poll() is None:
            return
        text = bytes(self.output[service]).decode(errors="replace")
        errors = [line for line in text.splitlines() if line.startswith(("qemu-system-", "qemu: "))
                  and "warning" not in line]
        if errors and proc.returncode != 0:
            command = next(c for c in self.commands if c.service == service)
            raise RunError(f"service {service}: QEMU failed: {errors[0].split(': ', 1)[-1]}",
                           detail="command: " + shlex.join(command.argv),
                           hint="check the service's kernel and the app's network settings", reason="qemu-failed")

    def first_exit(self) -> tuple[str, int] | None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self) -> None:
        """Stop every VM (by its own process handle) and the hub; remove the sockets."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self.gateway is not None:
            if self.gateway.poll() is None:
                self.gateway.terminate()
            try:
                self.gateway.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                self.gateway.kill()
                self.gateway.communicate()
        for thread in self._threads:
            thread.join(2)
        if self.hub is not None:
            self.hub.close()
            self.hub = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def describe(self) -> str:
        return "\n".join(f"{c.service}: {shlex.join(c.argv)}" for c in self.commands)


def run_app(app: App, built: AppBuildResult, plans: Mapping[str, ServicePlan], *,
            console: ConsoleSink | None = None, accel: str | None = None,
            stop_when: Callable[[AppRun], bool] | None = None) -> dict[str, int]:
    """Boot every service and wait until all stop, one fails, ``stop_when`` says so, or Ctrl-C."""
    with AppRun(app, plans, built, console=console, accel=accel) as running:
        while True:
            if all(p.poll() is not None for p in running.procs.values()):
                break
            failed = running.first_exit()
            if failed is not None:
                running.check_started(failed[0])
                if failed[1] not in (0, 1):
                    break
            if stop_when is not None and stop_when(running):
                break
            time.sleep(0.2)
        return {name: proc.poll() if proc.poll() is not None else -1 for name, proc in running.procs.items()}


def exit_status(statuses: Mapping[str, int | None]) -> int:
    """0 when every guest stopped cleanly (QEMU 0, or isa-debug-exit status 0 = 1)."""
    bad = [s for s in statuses.values() if s not in (0, 1)]
    return 1 if bad else 0


def sock_dir_ok(path: str) -> bool:  # pragma: no cover - used by docs/tests
    return len(os.path.join(path, "hub.sock")) <= 100 and Path(path).is_dir()
