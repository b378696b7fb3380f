"""A fake MirageOS 4 + Solo5 toolchain for tests: see README.md for what is real and what is faked."""

from __future__ import annotations

from tests.fakes.mirage._install import FakeMirage, install_fake_mirage

__all__ = ["FakeMirage", "install_fake_mirage"]
