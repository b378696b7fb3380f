"""What enters keys: the bake configuration, the prefix and the host GCC do; -j does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ukbuild_rumprun.detect import ENV_VAR
from ukbuild_rumprun.plugin import RumprunBackend

from tests.core.helpers import ukbuild
from tests.fakes.rumprun._install import FakeRumprun, install_fake_rumprun
from ukbuild._journal import FileDigests
from ukbuild.plugins import DetectContext

ACTIONS = ["hello", "hello-prog", "libnonce"]


def identity(prefix: Path) -> dict:
    environ = {**os.environ, ENV_VAR: str(prefix)}
    toolchain = RumprunBackend().detect({}, DetectContext(environ, FileDigests({}))).toolchain
    assert toolchain is not None
    return toolchain.to_key()


def keys(root: Path, cache: Path, out: Path, *args: str) -> dict[str, str]:
    result = ukbuild("build", "-C", root, "--cache-dir", cache, "-o", out, "--json", *args, "hello")
    assert result.code == 0, result.out + result.err
    found = {e["action"]: e["key"] for e in result.events() if e["event"] in ("action-finished", "action-cached")}
    assert sorted(found) == ACTIONS
    return found


@pytest.fixture
def own_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRumprun:
    """A fake install of this test's own (it gets modified), selected by $UKBUILD_RUMPRUN_PREFIX."""
    fake = install_fake_rumprun(tmp_path / "own" / "rumprun")
    monkeypatch.setenv(ENV_VAR, str(fake.prefix))
    return fake


def test_keys_follow_the_toolchain_identity_not_jobs(
    own_fake: FakeRumprun, fake_rumprun: FakeRumprun, project: object, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root: Path = project.root  # type: ignore[attr-defined]
    cache = tmp_path / "cache"
    base_identity = identity(own_fake.prefix)
    base = keys(root, cache, tmp_path / "o1", "-j", "4")
    assert keys(root, cache, tmp_path / "o2", "-j", "1") == base

    # Another install prefix (the session's fake): another identity, other keys.
    monkeypatch.setenv(ENV_VAR, str(fake_rumprun.prefix))
    other = identity(fake_rumprun.prefix)
    assert other["prefix"] != base_identity["prefix"]
    assert not set(keys(root, cache, tmp_path / "o3").values()) & set(base.values())
    monkeypatch.setenv(ENV_VAR, str(own_fake.prefix))

    # The bake configuration file.
    conf = own_fake.prefix / "etc" / "rumprun-bake.conf"
    conf.write_text(conf.read_text() + "\n# a site-local change\n")
    changed = identity(own_fake.prefix)
    assert changed["tools"]["etc/rumprun-bake.conf"] != base_identity["tools"]["etc/rumprun-bake.conf"]
    after_conf = keys(root, cache, tmp_path / "o4")
    assert all(after_conf[a] != base[a] for a in ACTIONS)

    # The host GCC the wrappers drive: a different compiler behind the backing driver.
    driver = own_fake.prefix / "libexec" / "rumprun-x86_64-hw" / "x86_64--netbsd-gcc"
    driver.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "gcc (Other) 13.9.0"; exit 0; }\nexec /usr/bin/gcc "$@"\n')
    driver.chmod(0o755)
    swapped = identity(own_fake.prefix)
    label = "backing[rumprun-x86_64-hw/x86_64--netbsd-gcc]"
    assert swapped["tools"][label]["version"] == "gcc (Other) 13.9.0"
    assert swapped["tools"][label] != changed["tools"][label]
    after_gcc = keys(root, cache, tmp_path / "o5")
    assert all(after_gcc[a] != after_conf[a] for a in ACTIONS)
