"""pytest fixture: ``fake_mirage``, one install per test session (per xdist worker).

Use it with ``from tests.fakes.mirage.fixture import fake_mirage  # noqa: F401``.
"""

from __future__ import annotations

import pytest

from tests.fakes.mirage._install import FakeMirage, install_fake_mirage


@pytest.fixture(scope="session")
def fake_mirage(tmp_path_factory: pytest.TempPathFactory) -> FakeMirage:
    """The fake MirageOS/Solo5 toolchain, installed once under the session's tmp dir."""
    return install_fake_mirage(tmp_path_factory.mktemp("fake-mirage"))
