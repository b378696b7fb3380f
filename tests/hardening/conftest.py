"""Options and fixtures for the hardening suite.

The default run takes the fast cases; ``--hardening-long`` (when
``tests/hardening`` is on the command line) or ``UKBUILD_HARDENING_LONG=1``
(anywhere) runs the full trial counts recorded in docs/reliability.md.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hardening-long", action="store_true", default=False,
        help="run the full hardening trial counts (also: UKBUILD_HARDENING_LONG=1)",
    )


def long_run(config: pytest.Config) -> bool:
    return bool(config.getoption("--hardening-long", default=False)) or os.environ.get("UKBUILD_HARDENING_LONG") == "1"


@pytest.fixture
def trials(request: pytest.FixtureRequest) -> int:
    """How many randomized trials a test runs: its ``trials(fast, long)`` marker picks one."""
    marker = request.node.get_closest_marker("trials")
    fast, full = marker.args if marker else (1, 1)
    return int(full if long_run(request.config) else fast)


@pytest.fixture
def private_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR inside the test's directory: scratch dirs of killed builds are removed with it."""
    path = tmp_path / "tmpdir"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "trials(fast, long): trial counts for the default and the long run")
