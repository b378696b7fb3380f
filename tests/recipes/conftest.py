"""Fixtures of the recipe tests: the fake Rumprun toolchain with the host C library as its
sysroot (real packages cannot be built against the tiny freestanding libc), Debian's source
packages (fetched by ``./dev setup``/``.ci/run`` into ``.cache/apt-src/src``), and the rule
for things the tests need: skipped with a reason locally, failed under ``CI=true``.

``@pytest.mark.slow`` recipe tests (the MariaDB builds) are not run by default: pass
``-m slow`` (or set ``UKBUILD_RUN_SLOW=1``) to run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.rumprun import FakeRumprun, install_fake_rumprun
from tests.needs import require

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes" / "rumprun"
#: Where ./dev unpacks Debian's source packages (UKBUILD_DEBIAN_SOURCES overrides it).
DEBIAN_SOURCES = Path(os.environ.get("UKBUILD_DEBIAN_SOURCES", REPO / ".cache" / "apt-src" / "src"))
#: recipe package → Debian source package.
DEBIAN_PACKAGE = {"nginx": "nginx", "php": "php8.2", "mariadb": "mariadb", "pcre2": "pcre2", "zlib": "zlib", "fmt": "fmtlib"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = config.getoption("markexpr", "") or ""
    if "slow" in markexpr or os.environ.get("UKBUILD_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow recipe build: run with -m slow or UKBUILD_RUN_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow") and Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fake_rumprun_host(tmp_path_factory: pytest.TempPathFactory) -> FakeRumprun:
    """The fake Rumprun toolchain whose sysroot is the host's C library (see tests/fakes/rumprun)."""
    return install_fake_rumprun(tmp_path_factory.mktemp("fake-rumprun-host") / "rumprun", libc="host")


@pytest.fixture
def rumprun_env(fake_rumprun_host: FakeRumprun, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRumprun]:
    """UKBUILD_RUMPRUN_PREFIX pointing at the fake, for the backend's detection."""
    monkeypatch.setenv("UKBUILD_RUMPRUN_PREFIX", str(fake_rumprun_host.prefix))
    yield fake_rumprun_host


def debian_source(package: str) -> Path:
    """The unpacked Debian source tree a recipe package is built from in tests."""
    tree = DEBIAN_SOURCES / DEBIAN_PACKAGE[package]
    require(tree.is_dir() and (DEBIAN_SOURCES / f"{DEBIAN_PACKAGE[package]}.unpacked").is_file(),
         f"Debian source package {DEBIAN_PACKAGE[package]} not unpacked in {DEBIAN_SOURCES} (run ./dev setup)")
    return tree


def overrides(*packages: str) -> dict[str, str]:
    return {name: str(debian_source(name)) for name in packages}
