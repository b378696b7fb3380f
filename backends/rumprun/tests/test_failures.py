"""A bake that exits 0 but writes nothing, or writes a non-Multiboot file, fails clearly and caches nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from ukbuild_rumprun.detect import ENV_VAR

from tests.core.helpers import ukbuild
from tests.fakes.rumprun._install import FakeRumprun

_LINK = "MACHINE_GNU_ARCH="
BROKEN = {
    # exits 0 before the final link: no output file
    "no-file": "exit 0\n",
    # "links" by copying the last input: an ELF relocatable, not a kernel
    "not-multiboot": 'cp "${f}" "${OUTPUT}"\nexit 0\n',
}


def broken_prefix(fake: FakeRumprun, where: Path, variant: str) -> Path:
    """A bin/ with the fake's tools, except a rumprun-bake broken as ``variant`` says."""
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True)
    for tool in fake.bin_dir.iterdir():
        if tool.name != "rumprun-bake":
            (bin_dir / tool.name).symlink_to(tool)
    text = fake.bake.read_text()
    assert _LINK in text
    (bin_dir / "rumprun-bake").write_text(text.replace(_LINK, BROKEN[variant] + _LINK, 1))
    (bin_dir / "rumprun-bake").chmod(0o755)
    return where


@pytest.mark.parametrize(("variant", "reason", "message"), [
    ("no-file", "missing-output", "hello: kernel/hello.bin: hello.bin: the command exited 0 but wrote no file"),
    ("not-multiboot", "not-multiboot", "hello: kernel/hello.bin: hello.bin: not a Multiboot kernel: no Multiboot v1 header"),
])
def test_broken_bake_fails_and_is_not_cached(
    fake_rumprun: FakeRumprun, project: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    variant: str, reason: str, message: str,
) -> None:
    monkeypatch.setenv(ENV_VAR, str(broken_prefix(fake_rumprun, tmp_path / "broken", variant)))
    cache = tmp_path / "cache"
    result = ukbuild("build", "-C", project.root, "--cache-dir", cache, "--json", "hello")  # type: ignore[attr-defined]
    assert result.code == 1
    failed = [e for e in result.events() if e["event"] == "action-failed"]
    assert [(e["action"], e["reason"]) for e in failed] == [("hello", reason)]
    assert failed[0]["message"].startswith(message)
    assert result.executed() == ["hello-prog", "libnonce"]
    digest = failed[0]["key"].split(":", 1)[1].split("/", 1)[0]
    assert not (cache / "ac" / digest[:2] / digest).exists()
    # Only the two packages have action results.
    assert len([p for p in (cache / "ac").rglob("*") if p.is_file()]) == 2
    assert not (project.root / "out" / "kernel").exists()  # type: ignore[attr-defined]
