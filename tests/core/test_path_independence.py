"""Outputs never embed where an action ran: other checkout, other scratch dir, same bytes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.core.helpers import tree_bytes
from ukbuild import api

FIXTURE = Path(__file__).parent / "data" / "libpath"


def build_at(tmp_path: Path, name: str) -> api.BuildResult:
    checkout = tmp_path / name / "src" / "libpath"
    shutil.copytree(FIXTURE, checkout)
    result = api.build(
        checkout, cache_dir=tmp_path / name / "cache", scratch_dir=tmp_path / name / "scratch-of-another-length"
    )
    assert result.ok, [e.message + "\n" + (e.detail or "") for e in result.errors]
    return result


def test_library_with_pc_file_and_debug_info_is_byte_identical(tmp_path: Path) -> None:
    first = build_at(tmp_path, "a")
    second = build_at(tmp_path / "deeper", "b")
    assert first.count("executed") == second.count("executed") == 2
    one, two = tree_bytes(first.out_dir), tree_bytes(second.out_dir)
    assert one == two
    lib = one["pkg/libfoo/usr/lib/libfoo.a"]
    assert b"/ukbuild/work/" in lib  # debug info names the logical build path ...
    assert str(tmp_path).encode() not in lib  # ... never the scratch or checkout path
    assert b"prefix=/usr" in one["pkg/libfoo/usr/lib/pkgconfig/foo.pc"]
    app = first.out_dir / "pkg" / "app" / "usr" / "bin" / "app"
    assert subprocess.run([app], capture_output=True, text=True, check=True).stdout == "answer 42\n"
    assert str(tmp_path).encode() not in app.read_bytes()
