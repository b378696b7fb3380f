"""Reading TOML files, and line numbers for their values, which ``tomllib`` does not report.

A light scan of the text maps each ``[table]`` header and each ``key =``
line to its line number, so errors can say ``file:line: field: message``.
It understands the TOML that people write (bare or quoted keys, dotted
headers, arrays spread over several lines); where it cannot place a value it
falls back to the nearest enclosing table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 is not supported, kept for tomli users
    import tomli as tomllib

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", dotted)
    return tuple(p.strip("\"'") for p in parts)


class Origins:
    """Maps a dotted field path to the line it was written on."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        depth = 0  # bracket depth of a multi-line value
        for number, line in enumerate(text.splitlines(), start=1):
            if depth == 0:
                header = _HEADER.match(line)
                if header:
                    table = _split(header.group(1))
                    self._lines.setdefault(table, number)
                    continue
                key = _KEY.match(line)
                if key:
                    self._lines.setdefault(table + _split(key.group(1)), number)
            depth = max(0, depth + _bracket_balance(line))

    def line(self, path: tuple[str, ...]) -> int:
        for end in range(len(path), 0, -1):
            found = self._lines.get(path[:end])
            if found:
                return found
        return 0


def _bracket_balance(line: str) -> int:
    code = re.sub(r"""("(?:\\.|[^"\\])*"|'[^']*')""", "", line).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


def read_toml(file: Path) -> tuple[dict[str, Any], str]:
    """The parsed file and its text; unreadable or malformed, a ConfigError naming the file and line."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}", hint="check that it is a readable file",
                          reason="unreadable") from exc
    try:
        text = raw.decode("utf-8-sig")  # (a leading byte-order mark, as some Windows editors write, is dropped)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{file}:{line}: not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}",
            hint="save the file as UTF-8 (TOML files are UTF-8)", reason="unreadable",
        ) from exc
    try:
        data = tomllib.loads(text)
    except RecursionError as exc:
        raise ConfigError(
            f"{file}: TOML syntax: arrays or tables nested too deeply",
            hint="flatten the nesting", reason="toml-syntax",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{file}:{match.group(1)}" if match else str(file)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(
            f"{where}: TOML syntax: {message}",
            hint="fix the syntax at that line (see https://toml.io)",
            reason="toml-syntax",
        ) from exc
    return data, text
