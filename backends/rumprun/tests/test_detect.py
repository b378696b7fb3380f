"""Detection: `ukbuild backends` with the fake prefix, on PATH, and without a toolchain."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ukbuild_rumprun.detect import ENV_VAR

from tests.core.helpers import ukbuild
from tests.fakes.rumprun._install import FakeRumprun


def _rumprun(result_out: str) -> dict:
    return next(b for b in json.loads(result_out)["backends"] if b["name"] == "rumprun")


def test_backends_shows_the_fake_with_versions_read_from_its_tools(use_fake: FakeRumprun) -> None:
    text = ukbuild("backends")
    assert text.code == 0, text.err
    line = next(line for line in text.out.splitlines() if line.startswith("rumprun:"))
    assert line == (f"rumprun: found at {use_fake.prefix}: x86_64-rumprun-netbsd, "
                    f"rumprun-bake {use_fake.bake_version}, {use_fake.gcc_version}")
    found = _rumprun(ukbuild("backends", "--json").out)
    assert found["found"] is True
    assert found["prefix"] == str(use_fake.prefix)
    assert found["env_var"] == ENV_VAR
    assert found["searched"] == [str(use_fake.bin_dir)]
    # Listed by `rumprun-bake list` and bakeable here (the fake installs the hw platform only).
    assert found["targets"] == {
        "hw_generic": True, "hw_virtio": True, "hw_virtio_scsi": True,
        "xen_pv": False, "xen_pci": False, "solo5_hvt": False, "solo5_spt": False,
    }


def test_found_on_path(fake_rumprun: FakeRumprun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", f"/usr/bin:/bin:{fake_rumprun.bin_dir}")
    found = _rumprun(ukbuild("backends", "--json").out)
    assert found["found"] is True
    assert found["prefix"] == str(fake_rumprun.prefix)
    assert str(fake_rumprun.bin_dir) in found["searched"]


def test_not_found_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    text = ukbuild("backends")
    line = next(line for line in text.out.splitlines() if line.startswith("rumprun:"))
    assert line.startswith("rumprun: not found: no rumprun-bake with x86_64-rumprun-netbsd-gcc")
    assert line.endswith(f"(looked in PATH); set {ENV_VAR} to its install prefix")
    found = _rumprun(ukbuild("backends", "--json").out)
    assert (found["found"], found["env_var"], found["searched"]) == (False, ENV_VAR, ["/usr/bin", "/bin"])


def test_a_wrong_prefix_is_not_silently_replaced_by_path(
    fake_rumprun: FakeRumprun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", f"{fake_rumprun.bin_dir}{os.pathsep}/usr/bin")
    found = _rumprun(ukbuild("backends", "--json").out)
    assert found["found"] is False
    assert f"looked in {ENV_VAR}={tmp_path / 'nowhere'}" in found["reason"]


def test_a_build_without_the_toolchain_says_what_to_set(
    project: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = ukbuild("build", "-C", project.root, "hello")  # type: ignore[attr-defined]
    assert result.code == 2
    assert "ukbuild.toml:5: toolchain.rr: rumprun toolchain not found: no rumprun-bake" in result.err
    assert f"set {ENV_VAR} to its install prefix" in result.err
