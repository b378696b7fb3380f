"""Fixtures for the MirageOS backend tests: the fake toolchain and its package repository."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

BACKEND_DIR = Path(__file__).resolve().parents[1]

if importlib.util.find_spec("ukbuild_mirage") is None:  # not installed yet: use the checkout
    sys.path.insert(0, str(BACKEND_DIR))

from backends.mirage.tests.helpers import Entry, Project  # noqa: E402
from tests.fakes.mirage import FakeMirage, install_fake_mirage  # noqa: E402

#: The source packages of the fake opam repository.
PACKAGES = ("lwt", "duration", "fmt", "mirage-solo5", "mirage-unix", "uri", "magic-mime")


@pytest.fixture(scope="session")
def fake(tmp_path_factory: pytest.TempPathFactory) -> FakeMirage:
    """The fake MirageOS/Solo5 toolchain, with PACKAGES published in its repository."""
    installed = install_fake_mirage(tmp_path_factory.mktemp("fake-mirage"))
    for name in PACKAGES:
        installed.add_package(name, "1.0", depends=["lwt"] if name != "lwt" else [])
    return installed


@pytest.fixture(scope="session")
def entries(fake: FakeMirage) -> dict[str, Entry]:
    """Each package's duniverse entry (URL, dir, hash), as opam monorepo lock writes it."""
    out = {}
    for name in PACKAGES:
        archive = fake.sources / f"{name}-1.0.tbz"
        out[name] = (archive.as_uri(), name, "sha256=" + hashlib.sha256(archive.read_bytes()).hexdigest())
    return out


@pytest.fixture
def env(fake: FakeMirage, monkeypatch: pytest.MonkeyPatch) -> FakeMirage:
    """Point detection (and the tender lookup of `ukbuild run`) at the fake switch."""
    monkeypatch.setenv("UKBUILD_MIRAGE_PREFIX", str(fake.prefix))
    monkeypatch.delenv("UKBUILD_SOLO5_PREFIX", raising=False)
    monkeypatch.setenv("OPAMROOT", str(fake.opam_root))
    return fake


@pytest.fixture
def project(tmp_path: Path, env: FakeMirage) -> Project:
    return Project(tmp_path / "proj")


