"""pytest fixture: ``fake_rumprun``, one install per test session (per xdist worker).

Use it with ``from tests.fakes.rumprun.fixture import fake_rumprun`` in a test
module or conftest (``# noqa: F401``); the value is a :class:`FakeRumprun`.
"""

from __future__ import annotations

import pytest

from tests.fakes.rumprun._install import FakeRumprun, install_fake_rumprun


@pytest.fixture(scope="session")
def fake_rumprun(tmp_path_factory: pytest.TempPathFactory) -> FakeRumprun:
    """The fake Rumprun toolchain, installed once under the session's tmp dir."""
    return install_fake_rumprun(tmp_path_factory.mktemp("fake-rumprun") / "rumprun")
