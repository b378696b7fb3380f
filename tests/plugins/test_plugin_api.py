"""The plugin API: loading backends, validating them, and a third-party backend end to end."""

from __future__ import annotations

import itertools
import json
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import jsonschema
import pytest

from tests.core.helpers import ukbuild
from ukbuild import api
from ukbuild.errors import ConfigError, PluginError, ToolchainError
from ukbuild.model import Action, PathInput
from ukbuild.plugins import Backend, DetectContext, Detection, ImageMetadata, UnikernelSpec, hookimpl
from ukbuild.plugins._manager import backends, plugin_manager
from ukbuild.toolchains import detect_host_toolchain

_serial = itertools.count()
SCHEMA = Path(__file__).resolve().parents[2] / "ukbuild" / "schemas" / "backends-v1.schema.json"


class CopyBackend(Backend):
    """A toy third-party backend: its 'kernel' is the input file, copied by the host's cp."""

    NAME = "copy"
    UNIKERNEL_OPTIONS = frozenset({"source"})
    TOOLCHAIN_OPTIONS = frozenset({"flavour"})

    def detect(self, options: Mapping[str, object], context: DetectContext) -> Detection:
        if context.environ.get("COPY_BACKEND_MISSING"):
            return Detection(self.NAME, None, reason="cp is hidden", env_var="COPY_PREFIX", searched=("/nowhere",))
        tc = detect_host_toolchain(["cp"], file_digest=context.file_digest, versions=context.versions)
        return Detection(self.NAME, tc, version="cp 1", targets={"anything": True})

    def plan(self, unikernel: UnikernelSpec) -> Sequence[Action]:
        source = str(unikernel.options["source"])
        return [Action(name=unikernel.name, argv=["cp", source, f"kernel/{unikernel.name}"],
                       outputs=[f"kernel/{unikernel.name}"], inputs=[PathInput(source, source)],
                       toolchain=unikernel.toolchain, step="copy/cp", checks=[(f"kernel/{unikernel.name}", "copy/nonempty")])]

    def checks(self) -> Mapping[str, object]:  # type: ignore[override]
        def nonempty(path: Path) -> None:
            if path.stat().st_size == 0:
                raise ToolchainError("the kernel is empty", hint="write something", reason="empty-kernel")
        return {"copy/nonempty": nonempty}

    def image_metadata(self, unikernel: UnikernelSpec) -> ImageMetadata:
        return ImageMetadata(kernel=f"kernel/{unikernel.name}", kernel_format="blob")


def plugin(*classes: type[Backend]) -> types.ModuleType:
    module = types.ModuleType(f"thirdparty_plugin_{next(_serial)}")

    @hookimpl
    def ukbuild_backends() -> list[type[Backend]]:
        return list(classes)

    module.ukbuild_backends = ukbuild_backends  # type: ignore[attr-defined]
    return module


def project(tmp_path: Path, content: str = "a kernel\n") -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "k.bin").write_text(content)
    (root / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[toolchain.cp]\nbackend = "copy"\nflavour = "plain"\n'
        '[unikernel.k]\ntoolchain = "cp"\nsource = "k.bin"\n'
    )
    return root


class TestLoading:
    def test_installed_backends_are_found_by_entry_point(self) -> None:
        assert "multiboot" in backends(plugin_manager())

    def test_api_version_is_checked(self) -> None:
        class Future(CopyBackend):
            NAME = "future"
            REQUIRES_API = (2, 0)

        with pytest.raises(PluginError, match="needs plugin API 2.0") as exc:
            backends(plugin_manager([plugin(Future)], entry_points=False))
        assert exc.value.reason == "api-mismatch"

    def test_duplicate_names_are_refused(self) -> None:
        with pytest.raises(PluginError, match="two plugins provide backend 'copy'"):
            backends(plugin_manager([plugin(CopyBackend), plugin(CopyBackend)], entry_points=False))

    def test_non_backend_is_refused(self) -> None:
        with pytest.raises(PluginError, match="not a Backend subclass"):
            backends(plugin_manager([plugin(dict)], entry_points=False))  # type: ignore[arg-type]


class TestThirdPartyBackend:
    def found(self) -> Mapping[str, Backend]:
        return backends(plugin_manager([plugin(CopyBackend)], entry_points=False))

    def test_builds_through_the_core(self, tmp_path: Path) -> None:
        root = project(tmp_path)
        proj = api.load_project(root, backends=self.found())
        result = api.Build(proj, [], api.BuildOptions(cache_dir=tmp_path / "c"), backends=self.found()).run()
        assert result.ok
        assert (root / "out" / "kernel" / "k").read_text() == "a kernel\n"
        again = api.Build(proj, [], api.BuildOptions(cache_dir=tmp_path / "c"), backends=self.found()).run()
        assert again.count("cached") == 1

    def test_a_failed_check_fails_the_action_and_caches_nothing(self, tmp_path: Path) -> None:
        root = project(tmp_path, content="")
        proj = api.load_project(root, backends=self.found())
        result = api.Build(proj, [], api.BuildOptions(cache_dir=tmp_path / "c"), backends=self.found()).run()
        assert not result.ok
        error = result.errors[0]
        assert error.message == "k: kernel/k: the kernel is empty" and error.reason == "empty-kernel"
        assert not list((tmp_path / "c" / "ac").glob("*/*"))
        assert not (root / "out" / "kernel" / "k").exists()

    def test_unknown_option_is_a_config_error_with_its_line(self, tmp_path: Path) -> None:
        root = project(tmp_path)
        (root / "ukbuild.toml").write_text((root / "ukbuild.toml").read_text() + "colour = 1\n")
        with pytest.raises(ConfigError, match=r"ukbuild\.toml:6: unikernel\.k\.colour: unknown field for backend copy"):
            api.load_project(root, backends=self.found())

    def test_toolchain_not_found_names_the_env_var(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COPY_BACKEND_MISSING", "1")
        root = project(tmp_path)
        proj = api.load_project(root, backends=self.found())
        with pytest.raises(ToolchainError) as exc:
            api.Build(proj, [], api.BuildOptions(cache_dir=tmp_path / "c"), backends=self.found()).run()
        assert "copy toolchain not found: cp is hidden" in exc.value.message
        assert "COPY_PREFIX" in (exc.value.hint or "")

    def test_unknown_backend(self, tmp_path: Path) -> None:
        root = project(tmp_path)
        (root / "ukbuild.toml").write_text((root / "ukbuild.toml").read_text().replace('backend = "copy"', 'backend = "nope"'))
        with pytest.raises(ConfigError, match=r"ukbuild\.toml:4: toolchain\.cp\.backend: no backend named 'nope' is installed"):
            api.load_project(root, backends=self.found())


class TestBackendsCommand:
    def test_lists_multiboot_found(self) -> None:
        result = ukbuild("backends")
        assert result.code == 0
        assert any(line.startswith("multiboot: found: ") for line in result.out.splitlines())

    def test_json_validates_against_the_schema(self) -> None:
        result = ukbuild("backends", "--json")
        document = json.loads(result.out)
        jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)
        multiboot = next(b for b in document["backends"] if b["name"] == "multiboot")
        assert multiboot["found"] is True and multiboot["targets"] == {"i386": True, "x86_64": True}
