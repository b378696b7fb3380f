"""A fake Rumprun toolchain for tests: see README.md for what is real and what is faked."""

from __future__ import annotations

from tests.fakes.rumprun._install import FakeRumprun, install_fake_rumprun

__all__ = ["FakeRumprun", "install_fake_rumprun"]
