"""_project's string-based path handling gives what pathlib gave (it runs per action of 10k projects)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from ukbuild._project import _Loader, _placeholders

NAMES = ["a.c", "src/a.c", "src/sub/a.tar.gz", ".hidden", "src/.hidden", "noext", "src/x.", "a/b/c",
         "src/..c", "d/e.f/g", "src/a/", "a/", "src/b.d/"]
VALUES = ["a", "a/b", "a//b", "./a", "a/./b", "a/", "./", ".", "a/b/", "a/.", "a/./", ".hidden", "a/.b/",
          "a///", "a/.//b/", "é/ü", " a", "a b/c"]


@pytest.mark.parametrize("match", NAMES)
def test_placeholders_match_pathlib(match: str) -> None:
    pure = PurePosixPath(match)
    assert _placeholders(match) == {"in": match, "stem": pure.stem, "name": pure.name, "dir": str(pure.parent)}


@pytest.mark.parametrize("value", VALUES)
def test_relpath_normalises_as_pathlib(value: str, tmp_path: Path) -> None:
    loader = _Loader(tmp_path / "ukbuild.toml", "", backends={})
    assert loader.relpath(value, ("action", "x")) == str(PurePosixPath(value)) + ("/" if value.endswith("/") else "")


@pytest.mark.parametrize("value", ["", "/abs", "../up", "a/../b", "a/.."])
def test_relpath_refuses_what_it_refused(value: str, tmp_path: Path) -> None:
    loader = _Loader(tmp_path / "ukbuild.toml", "", backends={})
    with pytest.raises(Exception, match="must be a relative path inside the project"):
        loader.relpath(value, ("action", "x"))
