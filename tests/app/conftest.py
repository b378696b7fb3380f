"""Fixtures for the app tests: apps of the Multiboot example (and prebuilt kernels) in a tmp dir,
a shared cache per session, and the CI rule for tools that are not on PATH (PyPI modules,
Debian's kernel): skipped with a reason locally, failed under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.needs import free_port, require  # noqa: F401 - free_port is re-exported to the app tests
from ukbuild import api
from ukbuild.app import AppBuildResult, build_app, load_app

from . import linux_guest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "multiboot"
WEBSTACK = REPO / "recipes" / "webstack"


def require_module(name: str, package: str) -> None:
    require(importlib.util.find_spec(name) is not None,
            f"needs the PyPI package {package} (pip install -e '.[test]')")


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app-cache")


class AppDir:
    """An app file in a tmp directory, with the Multiboot example as its recipe."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root = root
        self.cache = cache
        root.mkdir(parents=True, exist_ok=True)

    @property
    def file(self) -> Path:
        return self.root / "app.toml"

    def write(self, text: str) -> Path:
        self.file.write_text(text.replace("@EXAMPLE@", str(EXAMPLE)))
        return self.file

    def options(self, out: str = "out") -> api.BuildOptions:
        return api.BuildOptions(cache_dir=self.cache, out_dir=self.root / out, jobs=2)

    def build(self, out: str = "out") -> AppBuildResult:
        return build_app(load_app(self.file), self.options(out))


@pytest.fixture
def app_dir(tmp_path: Path, cache: Path) -> AppDir:
    return AppDir(tmp_path / "app", cache)


#: Two Multiboot services and two volumes: a static tree and a PHP-like application.
TWO_SERVICES = """
[app]
name = "demo"

[service.web]
recipe = "@EXAMPLE@"
unikernel = "hello"
ports = ["18080:80"]
links = ["php"]
volumes = [{ image = "www", mount = "/data" }]

[service.php]
recipe = "@EXAMPLE@"
unikernel = "hello"
expose = [9000]
volumes = [{ image = "php-app", mount = "/data/app" }]

[volume.www]
format = "ext2"
tree = "www/"

[volume.php-app]
format = "ext2"
tree = "php/"
"""


@pytest.fixture
def demo(app_dir: AppDir) -> AppDir:
    (app_dir.root / "www").mkdir()
    (app_dir.root / "www" / "index.html").write_text("<p>hello</p>\n")
    (app_dir.root / "php").mkdir()
    (app_dir.root / "php" / "index.php").write_text("<?php echo 'v1';\n")
    app_dir.write(TWO_SERVICES)
    return app_dir


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    """podman with private storage (vfs: nothing mounted) and a short runroot; cleaned up after."""
    runroot = tempfile.mkdtemp(prefix="ukpm-", dir="/tmp")  # podman wants it under 50 characters
    storage = tmp_path / "storage"
    argv = ["podman", "--root", str(storage), "--runroot", runroot, "--storage-driver", "vfs",
            "--events-backend", "file", "--cgroup-manager", "cgroupfs"]
    try:
        yield argv
    finally:
        subprocess.run([*argv, "rm", "--all", "--force"], capture_output=True, timeout=60)
        shutil.rmtree(runroot, ignore_errors=True)
        shutil.rmtree(storage, ignore_errors=True)


@pytest.fixture(scope="session")
def linux_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's kernel and the busybox initramfs of tests/app/linux_guest.py, in a tmp dir."""
    kernel = linux_guest.kernel()
    busybox = any(os.access(os.path.join(d, "busybox"), os.X_OK) for d in ("/bin", "/usr/bin"))
    require(kernel is not None and busybox,
            "needs Debian's kernel (/boot/vmlinuz-*: apt-get install linux-image-amd64) and busybox-static")
    assert kernel is not None
    root = tmp_path_factory.mktemp("linux")
    (root / "bzImage").write_bytes(kernel.read_bytes())
    linux_guest.initramfs(root / "initrd.cpio", kernel.name.removeprefix("vmlinuz-"))
    return root
