"""What the programs that actions run (``ukbuild-emit``, ``ukbuild-app``) share: argument
parsing and how they report bad input (an ``error:`` line, exit status 2, never a traceback)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .errors import UkbuildError


def name_value_pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    """``["K=V", …]`` → ``[("K", "V"), …]``; a value without ``=`` exits with an ``error:`` line."""
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {what} {value!r}: expected NAME=VALUE")
        pairs.append((key, rest))
    return pairs


def source_date_epoch() -> int:
    """The build's timestamp (the executor always sets ``SOURCE_DATE_EPOCH``)."""
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def run_tool(body: Callable[[], object]) -> int:
    """Run ``body``; bad input (a ukbuild error or an OS error) is an ``error:`` line and status 2."""
    try:
        body()
    except UkbuildError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
