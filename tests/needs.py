"""What a test needs from the machine: missing, it skips locally with the reason, but fails
under ``CI=true`` (or ``UKBUILD_REQUIRE_TOOLS=1``), so CI cannot go green by skipping."""

from __future__ import annotations

import os
import socket

import pytest


def tools_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("UKBUILD_REQUIRE_TOOLS") == "1"


def require(available: bool, message: str) -> None:
    """Skip (locally) or fail (under CI) unless ``available``."""
    if available:
        return
    if tools_required():
        pytest.fail(f"CI requires it: {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
