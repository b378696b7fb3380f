"""Line numbers for TOML values, which ``tomllib`` does not report.

A light scan of the text maps each ``[table]`` header and each ``key =``
line to its line number, so errors can say ``file:line: field: message``.
It understands the TOML that people write (bare or quoted keys, dotted
headers, arrays spread over several lines); where it cannot place a value it
falls back to the nearest enclosing table.
"""

from __future__ import annotations

import re

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
