"""Launcher images: QEMU and the unikernel in an OCI image that runs on any OCI runtime.

The acceptance check: the launcher image of the Multiboot example runs under
``podman --runtime runc run`` (the flags ci-machine.md says podman needs here)
and the kernel's console lines appear in the container's output.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from ukbuild.app.launcher import LAUNCH_SCRIPT

from .conftest import AppDir

SERVER = """
[app]
name = "lx"

[service.server]
kernel = "bzImage"
initrd = "initrd.cpio"
guest = "linux"
cmdline = "console=ttyS0 panic=-1 quiet"
env = { ROLE = "server" }
expose = [80]
"""

MULTIBOOT = """
[app]
name = "mb"

[service.hello]
recipe = "@EXAMPLE@"
unikernel = "hello"
"""


def manifest_of(layout: Path) -> tuple[dict, dict]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    config = json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_text())
    return manifest, config


def layer_files(layout: Path, descriptor: dict) -> dict[str, tarfile.TarInfo]:
    data = zlib.decompress((layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).read_bytes(),
                           16 + zlib.MAX_WBITS)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_three_layers_shared_base_unikernel_and_static_config(demo: AppDir) -> None:
    result = demo.build()
    web_manifest, web_config = manifest_of(result.launchers["web"])
    php_manifest, _ = manifest_of(result.launchers["php"])
    assert len(web_manifest["layers"]) == 3
    assert web_manifest["layers"][0] == php_manifest["layers"][0]  # one base layer for every service
    assert web_config["config"]["Entrypoint"] == ["/ukbuild/launch"]
    assert web_config["config"]["Labels"]["dev.ukbuild.service"] == "web"
    base = layer_files(result.launchers["web"], web_manifest["layers"][0])
    assert {"usr/bin/qemu-system-x86_64", "usr/bin/busybox", "usr/share/seabios/bios-256k.bin",
            "usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"} <= set(base)
    assert base["lib64"].issym() and base["usr/bin/sh"].linkname == "busybox"
    unikernel = layer_files(result.launchers["web"], web_manifest["layers"][1])
    assert {name for name, info in unikernel.items() if info.isfile()} == {"ukbuild/kernel"}
    app = layer_files(result.launchers["web"], web_manifest["layers"][2])
    assert {"ukbuild/launch", "ukbuild/service.env", "ukbuild/volumes/www/image/www.ext2"} <= set(app)
    assert "ukbuild/kernel" not in app
    assert app["ukbuild/launch"].mode == 0o755


def test_service_env_holds_the_guest_config(demo: AppDir) -> None:
    result = demo.build()
    manifest, _ = manifest_of(result.launchers["web"])
    data = zlib.decompress((result.launchers["web"] / "blobs/sha256" / manifest["layers"][-1]["digest"][7:]).read_bytes(),
                           16 + zlib.MAX_WBITS)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        env = tar.extractfile("ukbuild/service.env").read().decode()  # type: ignore[union-attr]
    assert "UKB_ADDR=10.77.0.10\n" in env and "UKB_PORTS=80\n" in env
    assert "UKB_LINKS=php:10.77.0.11:9000\n" in env  # guestfwd to the name php
    assert "UKB_DRIVES=/ukbuild/volumes/www/image/www.ext2:rw\n" in env
    check = subprocess.run(["sh", "-n", "-c", LAUNCH_SCRIPT], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.realtool("podman", "runc", "qemu-system-x86_64")
def test_multiboot_launcher_runs_under_podman(app_dir: AppDir, podman: list[str]) -> None:
    app_dir.write(MULTIBOOT)
    layout = app_dir.build().launchers["hello"]
    pulled = subprocess.run([*podman, "pull", "-q", f"oci:{layout}:latest"], capture_output=True, text=True,
                            timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    image = pulled.stdout.strip().splitlines()[-1]
    run = subprocess.run([*podman, "--runtime", "runc", "run", "--rm", "--network", "none",
                          "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", image],
                         capture_output=True, text=True, timeout=120)
    assert "HELLO from ukbuild" in run.stdout, run.stdout + run.stderr
    assert 'CMDLINE: kernel hello from the ukbuild example, args: a,b "c d"' in run.stdout
    assert "no network for the guest: the container has none" in run.stderr
    assert run.returncode == 1  # isa-debug-exit: the guest's status 0 → QEMU's 1


@pytest.mark.realtool("podman", "runc", "slirp4netns", "qemu-system-x86_64")
def test_launcher_publishes_the_service_port_in_the_container(app_dir: AppDir, podman: list[str],
                                                              linux_files: Path) -> None:
    """With a network (slirp4netns: nothing on the host but a user-space stack), the launcher reads the
    container's interface at start and forwards the service's port on it to the guest's app address."""
    import os
    import time

    for name in ("bzImage", "initrd.cpio"):
        os.link(linux_files / name, app_dir.root / name)
    app_dir.write(SERVER)
    layout = app_dir.build().launchers["server"]
    pulled = subprocess.run([*podman, "pull", "-q", f"oci:{layout}:latest"], capture_output=True, text=True,
                            timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    image = pulled.stdout.strip().splitlines()[-1]
    name = f"ukb-launch-{os.getpid()}"
    proc = subprocess.Popen([*podman, "--runtime", "runc", "run", "--rm", "--name", name, "--network", "slirp4netns",
                             "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", image],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        console = b""
        while b"READY" not in console and time.monotonic() < deadline and proc.poll() is None:
            console += proc.stdout.readline()
        assert b"READY 10.77.0.10" in console, console.decode(errors="replace")[-2000:]
        fetch = subprocess.run([*podman, "exec", name, "sh", "-c",
                                'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 127.0.0.1 80'],
                               capture_output=True, text=True, timeout=60)
        assert "hello from" in fetch.stdout, fetch.stdout + fetch.stderr
    finally:
        subprocess.run([*podman, "stop", "-t", "2", name], capture_output=True, timeout=60)
        try:
            _, errors = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, errors = proc.communicate()
    assert b"container network tap0=10.0.2.100/24 -> guest 10.77.0.10/24" in errors


def test_launcher_on_a_base_image_the_user_names(app_dir: AppDir, tmp_path: Path) -> None:
    """launcher_base = "DIR:TAG": the launcher images sit on that image's layers, no base action runs."""
    import shutil

    from ukbuild.app import load_app
    from ukbuild.errors import ConfigError

    app_dir.write(MULTIBOOT)
    base_layout = app_dir.build("out-base").launchers["hello"]
    shutil.copytree(base_layout, app_dir.root / "qemu-base")
    app_dir.write(MULTIBOOT.replace('name = "mb"', 'name = "mb"\nlauncher_base = "qemu-base:latest"'))
    result = app_dir.build()
    assert "launcher-base" not in result.results["app"].outcomes  # type: ignore[attr-defined]
    manifest, config = manifest_of(result.launchers["hello"])
    base_manifest, base_config = manifest_of(app_dir.root / "qemu-base")
    below = len(base_manifest["layers"])
    assert manifest["layers"][:below] == base_manifest["layers"] and len(manifest["layers"]) == below + 2
    assert config["rootfs"]["diff_ids"][:below] == base_config["rootfs"]["diff_ids"]
    app_dir.write(MULTIBOOT.replace('name = "mb"', 'name = "mb"\nlauncher_base = "nowhere:latest"'))
    with pytest.raises(ConfigError, match=r"app.launcher_base: 'nowhere:latest' is not DIR:TAG of an OCI image layout"):
        load_app(app_dir.file)


LINKED = """
[app]
name = "gf"

[service.server]
kernel = "bzImage"
initrd = "initrd.cpio"
guest = "linux"
expose = [80]
container = "none"

[service.client]
kernel = "bzImage"
initrd = "initrd.cpio"
guest = "linux"
cmdline = "console=ttyS0 panic=-1 quiet"
env = { ROLE = "client", PEER = "10.77.0.10", PING = "no" }
links = ["server"]
"""


@pytest.mark.realtool("podman", "runc", "slirp4netns", "qemu-system-x86_64")
def test_launcher_reaches_a_linked_service_by_name(app_dir: AppDir, podman: list[str], linux_files: Path) -> None:
    """The guest connects to its link's app address; the launcher forwards that to the link's *name*,
    resolved in the container (here --add-host server:127.0.0.1, where busybox httpd answers)."""
    import os
    import time

    for name in ("bzImage", "initrd.cpio"):
        os.link(linux_files / name, app_dir.root / name)
    app_dir.write(LINKED)
    layout = app_dir.build().launchers["client"]
    pulled = subprocess.run([*podman, "pull", "-q", f"oci:{layout}:latest"], capture_output=True, text=True,
                            timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    image = pulled.stdout.strip().splitlines()[-1]
    name = f"ukb-link-{os.getpid()}"
    proc = subprocess.Popen([*podman, "--runtime", "runc", "run", "--rm", "--name", name, "--network", "slirp4netns",
                             "--add-host", "server:127.0.0.1", "--ulimit", "nofile=1024:1024",
                             "--ulimit", "nproc=1024:1024", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        serve = "mkdir -p /tmp/www && echo 'hello from the container' > /tmp/www/index.html && " \
                "busybox httpd -p 127.0.0.1:80 -h /tmp/www"
        for _ in range(60):
            started = subprocess.run([*podman, "exec", name, "sh", "-c", serve], capture_output=True, timeout=60)
            if started.returncode == 0:
                break
            time.sleep(0.5)
        assert started.returncode == 0, started.stderr
        assert proc.stdout is not None
        console = b""
        deadline = time.monotonic() + 120
        while b"RESULT" not in console and time.monotonic() < deadline and proc.poll() is None:
            console += proc.stdout.readline()
    finally:
        subprocess.run([*podman, "stop", "-t", "1", name], capture_output=True, timeout=60)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert b"FETCHED hello from the container" in console and b"RESULT ok" in console, console[-2000:]
