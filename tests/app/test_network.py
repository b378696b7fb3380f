"""The app network: guest configurations, QEMU options, the hub, and `ukbuild run APP` with real guests.

The fake unikernels cannot network, so the wiring is tested with two small
Linux guests (Debian's kernel, a busybox initramfs built here) under TCG:
the client pings the server across the hub and fetches its page; the
server's published port answers on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from ukbuild.app import AppRun, build_app, load_app, plan_services
from ukbuild.app.network import Endpoint, Hub, gateway_argv, guest_cmdline, qemu_net_args, rumprun_config

from .conftest import AppDir, free_port

ENDPOINT = Endpoint("web", "10.77.0.10", 24, "10.77.0.1", "52:54:00:aa:bb:cc", None)


def test_rumprun_config_replaces_net_and_adds_volumes() -> None:
    base = ('{"blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/etc"}, '
            '"net": {"if": "vioif0", "type": "inet", "method": "dhcp"}, "cmdline": "nginx -c /data/conf/nginx.conf"}')
    config = rumprun_config(base, ENDPOINT, blk=[(1, "/data")], env=[("TZ", "UTC")])
    assert config == (
        '{"blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/etc"}, '
        '"blk": {"source": "dev", "path": "/dev/ld1a", "fstype": "blk", "mountpoint": "/data"}, '
        '"env": "TZ=UTC", '
        '"net": {"if": "vioif0", "type": "inet", "method": "static", "addr": "10.77.0.10", "mask": "24", '
        '"gw": "10.77.0.1"}, "cmdline": "nginx -c /data/conf/nginx.conf"}')
    assert "," not in config.replace(", ", "")  # single commas (QEMU 7.2 passes -append unchanged)
    json.loads(config.replace('"blk": {"source": "dev", "path": "/dev/ld0a"', '"blk0": {"source": "dev", "path": "x"'))


def test_mirage_linux_and_multiboot_command_lines() -> None:
    assert guest_cmdline("mirage", "--hello=x", ENDPOINT) == "--hello=x --ipv4=10.77.0.10/24 --ipv4-gateway=10.77.0.1"
    assert guest_cmdline("linux", "console=ttyS0", ENDPOINT, env=[("ROLE", "server")]) == (
        "console=ttyS0 ip=10.77.0.10::10.77.0.1:255.255.255.0:web:eth0:off ROLE=server")
    assert guest_cmdline("multiboot", "hello", ENDPOINT) == "hello"


def test_qemu_options_use_unix_dgram_and_a_loopback_gateway(demo: AppDir) -> None:
    app = load_app(demo.file)
    args = qemu_net_args(app, app.services["php"], ENDPOINT, "/tmp/x")
    assert args == ["-netdev", "dgram,id=app,local.type=unix,local.path=/tmp/x/php.sock,remote.type=unix,"
                    "remote.path=/tmp/x/hub.sock", "-device", "virtio-net-pci,mac=52:54:00:aa:bb:cc,romfile=,netdev=app"]
    gateway = " ".join(gateway_argv(app, "/tmp/x") or [])
    assert "-machine none" in gateway and "local.path=/tmp/x/gateway.sock" in gateway
    assert "restrict=on" in gateway and "host=10.77.0.1,dns=10.77.0.2" in gateway
    assert "hostfwd=tcp:127.0.0.1:18080-10.77.0.10:80" in gateway
    assert gateway_argv(load_app(demo.file.parent / "app.toml"), "/tmp/x") is not None


def test_hub_switches_frames_between_peers() -> None:
    directory = tempfile.mkdtemp(prefix="ukb-hub-", dir="/tmp")
    hub = Hub(directory)
    peers = []
    try:
        for name in ("a", "b", "c"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(os.path.join(directory, name))
            sock.settimeout(2)
            peers.append(sock)
        mac = {n: bytes([2, 0, 0, 0, 0, i]) for i, n in enumerate("abc")}
        for name, sock in zip("abc", peers, strict=True):  # each announces itself (broadcast)
            sock.sendto(b"\xff" * 6 + mac[name] + b"\x08\x06hello", hub.path)
        time.sleep(0.3)
        for sock in peers:  # drain the broadcasts
            sock.settimeout(0.2)
            try:
                while sock.recv(100):
                    pass
            except TimeoutError:
                pass
        peers[0].sendto(mac["c"] + mac["a"] + b"\x08\x00unicast", hub.path)
        peers[2].settimeout(2)
        assert peers[2].recv(100).endswith(b"unicast")
        with pytest.raises(TimeoutError):
            peers[1].recv(100)  # learned: not flooded to b
    finally:
        for sock in peers:
            sock.close()
        hub.close()
        assert not os.path.exists(hub.path)
        shutil.rmtree(directory)


LINUX_APP = """
[app]
name = "lx"

[service.server]
kernel = "bzImage"
initrd = "initrd.cpio"
guest = "linux"
cmdline = "console=ttyS0 panic=-1 quiet"
env = {{ ROLE = "server" }}
expose = [80]
ports = ["{port}:80"]
container = "none"

[service.client]
kernel = "bzImage"
initrd = "initrd.cpio"
guest = "linux"
cmdline = "console=ttyS0 panic=-1 quiet"
env = {{ ROLE = "client", PEER = "10.77.0.10" }}
links = ["server"]
container = "none"
"""


@pytest.mark.realtool("qemu-system-x86_64")
def test_guests_ping_and_fetch_across_the_app_network(app_dir: AppDir, linux_files: Path) -> None:
    for name in ("bzImage", "initrd.cpio"):
        os.link(linux_files / name, app_dir.root / name)
    port = free_port()
    app_dir.write(LINUX_APP.format(port=port))
    app = load_app(app_dir.file)
    built = build_app(app, app_dir.options())
    with AppRun(app, plan_services(app), built) as running:
        assert running.wait_for("server", r"READY 10\.77\.0\.10", 240), running.output["server"].decode()[-2000:]
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(1)
        assert body.startswith("hello from"), "published port did not answer"
        assert running.wait_for("client", r"RESULT \w+", 400), running.output["client"].decode()[-2000:]
        client = running.output["client"].decode()
        assert "PING ok 10.77.0.10" in client and "RESULT ok" in client, client[-2000:]
        assert "FETCHED hello from" in client
        assert running.hub is not None and running.hub.frames > 10
        procs = list(running.procs.values())
    assert all(p.poll() is not None for p in procs)  # everything stopped on exit


@pytest.mark.realtool("qemu-system-x86_64")
def test_qemu_refusing_to_start_is_an_error(app_dir: AppDir, linux_files: Path) -> None:
    from ukbuild.app.run import run_app
    from ukbuild.errors import RunError

    for name in ("bzImage", "initrd.cpio"):
        os.link(linux_files / name, app_dir.root / name)
    app_dir.write(LINUX_APP.format(port=free_port()).replace("memory", "x").replace(
        'cmdline = "console=ttyS0 panic=-1 quiet"\nenv = {{ ROLE = "server" }}'.replace("{{", "{").replace("}}", "}"),
        'cmdline = "console=ttyS0"\nmemory = 65536'))
    app = load_app(app_dir.file)
    built = build_app(app, app_dir.options())
    with pytest.raises(RunError) as err:
        run_app(app, built, plan_services(app), stop_when=lambda r: False)
    assert "service server: QEMU failed" in err.value.message


