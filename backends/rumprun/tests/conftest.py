"""Fixtures for the Rumprun backend: the fake toolchain, a real one if present, the test project."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import sys
from pathlib import Path

import attrs
import pytest

BACKEND_DIR = Path(__file__).resolve().parents[1]
PROJECT = Path(__file__).resolve().parent / "project"

if importlib.util.find_spec("ukbuild_rumprun") is None:  # not installed yet: use the checkout
    sys.path.insert(0, str(BACKEND_DIR))

from ukbuild_rumprun.detect import ENV_VAR
from ukbuild_rumprun.plugin import RumprunBackend

from tests.fakes.rumprun._install import FakeRumprun
from tests.fakes.rumprun.fixture import fake_rumprun  # noqa: F401
from ukbuild.api import detect_backends

#: What the environment this session started with provides (before tests monkeypatch it).
_ORIGINAL_ENV = dict(os.environ)


def is_fake(prefix: str) -> bool:
    """Whether the install at ``prefix`` is tests/fakes/rumprun (its bake tool says so)."""
    bake = Path(prefix) / "bin" / "rumprun-bake"
    return bake.is_file() and "Fake rumprun-bake" in bake.read_text(errors="replace")


def real_prefix() -> str | None:
    """The prefix of a real (not fake) Rumprun toolchain on $UKBUILD_RUMPRUN_PREFIX or PATH."""
    found = detect_backends({"rumprun": RumprunBackend()}, _ORIGINAL_ENV)[0]
    prefix = found.toolchain.prefix if found.toolchain else None
    return prefix if prefix and not is_fake(prefix) else None


@pytest.fixture(params=["fake", "real"])
def toolchain_prefix(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Rumprun install prefix, also set as $UKBUILD_RUMPRUN_PREFIX: the fake, then a real one."""
    if request.param == "fake":
        prefix = str(request.getfixturevalue("fake_rumprun").prefix)
    else:
        prefix = real_prefix()  # type: ignore[assignment]
        if prefix is None:
            pytest.skip(f"no real Rumprun toolchain: set {ENV_VAR} to one, or put its bin/ on PATH "
                        "(it cannot be installed on the CI machine: upstream needs gcc 5-7)")
    monkeypatch.setenv(ENV_VAR, prefix)
    return prefix


@pytest.fixture
def use_fake(fake_rumprun: FakeRumprun, monkeypatch: pytest.MonkeyPatch) -> FakeRumprun:  # noqa: F811
    """The fake toolchain, selected through $UKBUILD_RUMPRUN_PREFIX."""
    monkeypatch.setenv(ENV_VAR, str(fake_rumprun.prefix))
    return fake_rumprun


@attrs.frozen
class Project:
    """A copy of tests/project with fresh nonces in the program, the library and the config."""

    root: Path
    program: str
    library: str
    config: str


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    shutil.copytree(PROJECT, root)
    nonces = {name: f"{name}-{secrets.token_hex(6)}" for name in ("program", "library", "config")}
    for rel, placeholder, name in (("hello-prog/hello.c", "@PROGRAM_NONCE@", "program"),
                                   ("libnonce/nonce.c", "@LIBRARY_NONCE@", "library"),
                                   ("ukbuild.toml", "@CONFIG_NONCE@", "config")):
        path = root / rel
        path.write_text(path.read_text().replace(placeholder, nonces[name]))
    return Project(root, **nonces)
