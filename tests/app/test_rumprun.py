"""A Rumprun service (the fake toolchain): the app writes the guest's JSON configuration — its
network replaced by the app's, the app's volumes as block devices — and the guest reads it when
`ukbuild run APP` boots it."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zlib
from pathlib import Path

import pytest

from tests.fakes.rumprun.fixture import fake_rumprun  # noqa: F401
from ukbuild.app import AppRun, load_app, plan_services
from ukbuild.app.network import mac_address

from .conftest import AppDir

PROJECT = Path(__file__).resolve().parents[2] / "backends" / "rumprun" / "tests" / "project"

APP = """
[app]
name = "rr"

[service.hello]
recipe = "recipe"
unikernel = "hello"
volumes = [{ image = "data", mount = "/data" }]
env = { APP_ROLE = "demo" }

[volume.data]
format = "ext2"
files = { "motd" = "motd.txt" }
"""


@pytest.fixture
def rumprun_app(app_dir: AppDir, fake_rumprun: object, monkeypatch: pytest.MonkeyPatch) -> AppDir:  # noqa: F811
    monkeypatch.setenv("UKBUILD_RUMPRUN_PREFIX", str(fake_rumprun.prefix))  # type: ignore[attr-defined]
    recipe = app_dir.root / "recipe"
    shutil.copytree(PROJECT, recipe)
    for rel, placeholder in (("hello-prog/hello.c", "@PROGRAM_NONCE@"), ("libnonce/nonce.c", "@LIBRARY_NONCE@"),
                             ("ukbuild.toml", "@CONFIG_NONCE@")):
        path = recipe / rel
        path.write_text(path.read_text().replace(placeholder, "7"))
    toml = recipe / "ukbuild.toml"
    toml.write_text(toml.read_text() + 'net = [{ type = "inet", method = "dhcp" }]\n'
                    'blk = [{ image = "missing.iso", mountpoint = "/etc" }]\n')
    (app_dir.root / "motd.txt").write_text("hello\n")
    app_dir.write(APP)
    return app_dir


def service_env(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    data = zlib.decompress((layout / "blobs/sha256" / manifest["layers"][-1]["digest"][7:]).read_bytes(),
                           16 + zlib.MAX_WBITS)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile("ukbuild/service.env").read().decode()  # type: ignore[union-attr]


def test_rumprun_json_of_the_service(rumprun_app: AppDir) -> None:
    result = rumprun_app.build()
    env = service_env(result.launchers["hello"])
    append = next(line for line in env.splitlines() if line.startswith("UKB_APPEND="))
    config = append.removeprefix("UKB_APPEND='").removesuffix("'")
    assert config.startswith('{"blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/data"}, ')
    assert '"env": "GREETING=hi,there", "env": "APP_ROLE=demo"' in config
    assert ('"net": {"if": "vioif0", "type": "inet", "method": "static", "addr": "10.77.0.10", "mask": "24", '
            '"gw": "10.77.0.1"}') in config
    assert '"method": "dhcp"' not in config and "/etc" not in config  # the recipe's own replaced
    assert "UKB_EXTRA='-vga none'" in env and "UKB_DRIVES=/ukbuild/volumes/data/image/data.ext2:rw" in env


@pytest.mark.realtool("qemu-system-x86_64")
def test_run_boots_the_guest_with_the_app_config(rumprun_app: AppDir) -> None:
    app = load_app(rumprun_app.file)
    from ukbuild.app import build_app

    built = build_app(app, rumprun_app.options())
    with AppRun(app, plan_services(app), built) as running:
        assert running.wait_for("hello", r'=== main\(\) of "hello" returned', 60), running.output["hello"].decode()
        console = running.output["hello"].decode(errors="replace")
    mac = mac_address("rr", "hello")
    assert f"vioif0 at virtio0: Ethernet address {mac}" in console.replace("virtio1", "virtio0") or mac in console
    assert "failed to mount" not in console and "error parsing json" not in console
    assert "argv[1]=7" in console and "GREETING=hi,there" in console


def test_overrides_go_to_the_recipe_with_that_package(rumprun_app: AppDir) -> None:
    """--override PKG=DIR reaches the recipe that has PKG (the others and the app's own graph never see it)."""
    import attrs

    from ukbuild.app import build_app
    from ukbuild.errors import ConfigError

    text = (rumprun_app.file.read_text()
            + '\n[service.box]\nrecipe = "' + str(PROJECT.parents[3] / "examples" / "multiboot") + '"\n'
            'unikernel = "hello"\ncontainer = "none"\n')
    rumprun_app.file.write_text(text)
    local = rumprun_app.root / "local-hello"
    shutil.copytree(rumprun_app.root / "recipe" / "hello-prog", local)
    (local / "hello.c").write_text((local / "hello.c").read_text().replace('"7"', '"7"').replace(
        "program nonce: %s", "overridden program nonce: %s"))
    app = load_app(rumprun_app.file)
    options = attrs.evolve(rumprun_app.options(), overrides={"hello-prog": str(local)})
    result = build_app(app, options)
    outcomes = result.results["service:hello"].outcomes  # type: ignore[attr-defined]
    assert outcomes["hello-prog"].status == "executed"
    with pytest.raises(ConfigError, match="--override nope: no service's recipe has a package named 'nope'"):
        build_app(app, attrs.evolve(options, overrides={"nope": str(local)}))
