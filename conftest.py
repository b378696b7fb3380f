"""Suite-wide pytest configuration for ukbuild and its backend distributions.

``@pytest.mark.realtool("qemu-system-x86_64", ...)`` names the host tools a
test needs.  A missing tool skips the test with a reason locally, but under
``CI=true`` (or ``UKBUILD_REQUIRE_TOOLS=1``) it fails, so CI cannot go green
by skipping.
"""

from __future__ import annotations

import shutil

import pytest

from tests.needs import require


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "realtool(*names): needs these host tools on PATH")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("realtool"):
        missing = [name for name in marker.args if shutil.which(name) is None]
        require(not missing, f"needs {', '.join(missing)} on PATH (install with .ci/run's apt-get line)")
