"""The web stack end to end with a real Rumprun toolchain: nginx, PHP and MariaDB built from
their recipes, booted by `ukbuild run APP` on the app network, and the PHP page reading the
database row through nginx on 127.0.0.1.  Skipped with the reason when there is no real
toolchain (upstream Rumprun needs gcc 5-7 and cannot be built on the CI machine).

Not run on the machine this was written on (no real toolchain there); the pieces it relies on
are each tested: the volumes and the data directory (test_webstack.py), the Rumprun JSON the
app writes and a fake Rumprun guest reading it (test_rumprun.py), the network (test_network.py).
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from ukbuild.api import BuildOptions, detect_backends
from ukbuild.app import AppRun, build_app, load_app, plan_services

from .conftest import WEBSTACK, free_port

_ORIGINAL_ENV = dict(os.environ)


def real_rumprun() -> str | None:
    from ukbuild_rumprun.plugin import RumprunBackend

    found = detect_backends({"rumprun": RumprunBackend()}, _ORIGINAL_ENV)[0]
    prefix = found.toolchain.prefix if found.toolchain else None
    bake = Path(prefix or "/nonexistent") / "bin" / "rumprun-bake"
    if prefix is None or (bake.is_file() and "Fake rumprun-bake" in bake.read_text(errors="replace")):
        return None
    return prefix


@pytest.mark.realtool("qemu-system-x86_64", "mariadb-install-db")
def test_webstack_answers_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = real_rumprun()
    if prefix is None:
        pytest.skip("no real Rumprun toolchain: set UKBUILD_RUMPRUN_PREFIX to one, or put its bin/ on PATH "
                    "(upstream Rumprun needs gcc 5-7 and cannot be built on the CI machine)")
    monkeypatch.setenv("UKBUILD_RUMPRUN_PREFIX", prefix)
    port = free_port()
    app_file = WEBSTACK / "app.toml"
    copy = tmp_path / "app.toml"
    shutil.copy(app_file, copy)
    text = copy.read_text().replace('"../rumprun/', f'"{WEBSTACK.parent / "rumprun"}/')
    for name in ("nginx", "php", "db"):
        text = text.replace(f'tree = "{name}/"', f'tree = "{WEBSTACK / name}/"')
    text = text.replace('ports = ["8080:80"]', f'ports = ["{port}:80"]')
    text = text.replace('"db/', f'"{WEBSTACK}/db/')
    copy.write_text(text)
    app = load_app(copy)
    built = build_app(app, BuildOptions(out_dir=tmp_path / "out", jobs=2))
    with AppRun(app, plan_services(app), built) as running:
        body = ""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "greeting 1:" not in body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/greeting.php", timeout=10) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(2)
        consoles = {name: out.decode(errors="replace")[-1500:] for name, out in running.output.items()}
    assert body == "greeting 1: Hello from MariaDB, through PHP and nginx, each in its own unikernel\n", consoles
