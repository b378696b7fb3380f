"""opam-monorepo lock files: the duniverse directories they pin, one entry at a time."""

from __future__ import annotations

import re

import attrs

from ukbuild.errors import ConfigError

DIRS_FIELD = "x-opam-monorepo-duniverse-dirs"
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\[)|(\])|(\{[^}]*\})|(\S+)')


@attrs.frozen
class DuniverseDir:
    """One ``[URL DIR [HASHES]]`` entry: the source of ``duniverse/DIR``."""

    url: str
    dir: str
    hashes: tuple[str, ...] = attrs.field(converter=tuple, default=())

    def lock_text(self) -> str:
        """A lock file pinning only this directory, for ``opam monorepo pull``."""
        hashes = " ".join(f'"{h}"' for h in self.hashes)
        return (f'opam-version: "2.0"\n{DIRS_FIELD}: [\n  [ "{self.url}" "{self.dir}" [ {hashes} ] ]\n]\n'
                'x-opam-monorepo-version: "0.3"\n')


def _list_after(text: str, start: int) -> list[object]:
    stack: list[list[object]] = []
    for m in _TOKEN.finditer(text, start):
        string, opening, closing, _filter, word = m.groups()
        if opening:
            stack.append([])
        elif closing:
            if not stack:
                break
            done = stack.pop()
            if not stack:
                return done
            stack[-1].append(done)
        elif string is not None and stack:
            stack[-1].append(string)
        elif word is not None and not stack:
            break
    raise ValueError("unterminated list")


def duniverse_dirs(text: str, origin: str) -> list[DuniverseDir]:
    """Every duniverse entry of a lock file; ``origin`` names the file in errors."""
    m = re.search(rf"^{re.escape(DIRS_FIELD)}:\s*", text, re.M)
    if m is None:
        raise ConfigError(f"{origin}: no {DIRS_FIELD} field: not an opam-monorepo lock file",
                          hint="regenerate it with `make lock` (opam monorepo lock), or remove it so ukbuild locks",
                          reason="bad-lock-file")
    try:
        entries = _list_after(text, m.end())
    except ValueError:
        entries = None
    dirs: list[DuniverseDir] = []
    for entry in [None] if entries is None else entries:
        if not (isinstance(entry, list) and len(entry) >= 2 and all(isinstance(e, str) for e in entry[:2])
                and (len(entry) == 2 or isinstance(entry[2], list))):
            raise ConfigError(f"{origin}: {DIRS_FIELD}: expected entries [\"URL\" \"DIR\" [\"HASH\" …]]",
                              hint="regenerate the lock file with opam monorepo lock", reason="bad-lock-file")
        hashes = tuple(str(h) for h in entry[2]) if len(entry) > 2 else ()  # type: ignore[union-attr]
        if not re.fullmatch(r"[A-Za-z0-9._+-]+", str(entry[1])):
            raise ConfigError(f"{origin}: duniverse directory name {entry[1]!r} is not a plain name",
                              hint="regenerate the lock file with opam monorepo lock", reason="bad-lock-file")
        dirs.append(DuniverseDir(str(entry[0]), str(entry[1]), hashes))
    return dirs
