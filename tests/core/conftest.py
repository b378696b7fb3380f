"""Fixtures for the core engine's tests: a private cache and a private copy of the example."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.core.helpers import EXAMPLE


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("UKBUILD_CACHE_DIR", str(path))
    return path


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of examples/hello-c (without any output from earlier runs)."""
    dest = tmp_path / "checkout" / "hello-c"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("out"))
    return dest
