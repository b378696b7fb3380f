"""--sandbox: an untrusted recipe can neither reach the network nor write outside its scratch dir."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from tests.core.helpers import EXAMPLE, tree_bytes, ukbuild


@pytest.mark.realtool("bwrap")
def test_untrusted_recipe_is_contained(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    victim = tmp_path / "victim.txt"
    project = tmp_path / "p"
    project.mkdir()
    script = (
        f"if python3 -c 'import socket; socket.create_connection((\\\"127.0.0.1\\\", {port}), 2)' 2>/dev/null; "
        "then echo net=reached; else echo net=blocked; fi > report.txt; "
        f"if echo owned > {victim} 2>/dev/null; then echo write=done; else echo write=blocked; fi >> report.txt; "
        "pwd >> report.txt"
    )
    (project / "ukbuild.toml").write_text(
        '[project]\nname = "evil"\n[toolchain.host]\ntools = ["sh", "python3"]\n'
        f'[action.evil]\ncommand = ["sh", "-c", "{script}"]\noutputs = ["report.txt"]\n'
    )
    try:
        result = ukbuild("build", "-C", project, "--cache-dir", tmp_path / "c", "--sandbox")
    finally:
        server.close()
    assert result.code == 0, result.err
    assert (project / "out" / "report.txt").read_text().splitlines() == ["net=blocked", "write=blocked", "/ukbuild/work"]
    assert not victim.exists()


@pytest.mark.realtool("bwrap", "cc")
def test_sandboxed_build_gives_the_same_bytes(tmp_path: Path) -> None:
    """The logical path is the same either way, so sandboxed outputs equal plain ones."""
    plain, boxed = tmp_path / "plain" / "hello-c", tmp_path / "boxed" / "hello-c"
    for dest in (plain, boxed):
        shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("out"))
    assert ukbuild("build", "-C", plain, "--cache-dir", tmp_path / "c1").code == 0
    result = ukbuild("build", "-C", boxed, "--cache-dir", tmp_path / "c2", "--sandbox")
    assert result.code == 0, result.err
    assert tree_bytes(plain / "out") == tree_bytes(boxed / "out")
