"""Building an app: every service image, the volumes, compose.yaml and the Kubernetes manifests;
caching (a second build is all hits, a PHP change rebuilds only what contains it) and validation
by docker-compose and the Kubernetes schemas."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ukbuild.app import load_app
from ukbuild.app.manifests import to_yaml

from .conftest import AppDir, require_module


def executed(result: object, scope: str) -> set[str]:
    outcomes = result.results[scope].outcomes  # type: ignore[attr-defined]
    return {name for name, o in outcomes.items() if o.status == "executed"}


def test_app_builds_every_image_and_manifest(demo: AppDir) -> None:
    result = demo.build()
    out = result.out_dir
    assert set(result.launchers) == {"web", "php"} and not result.urunc
    for name, layout in result.launchers.items():
        index = json.loads((layout / "index.json").read_text())
        assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
        assert (out / "services" / name / "kernel" / "hello.elf").is_file()
    assert {p.name for p in result.volumes.values()} == {"www.ext2", "php-app.ext2"}
    assert sorted(p.relative_to(out).as_posix() for p in result.manifests) == [
        "compose.yaml", "k8s/php.yaml", "k8s/web.yaml"]
    compose = (out / "compose.yaml").read_text()
    assert "image: \"localhost/ukbuild/demo-web:latest\"" in compose
    assert "\"127.0.0.1:18080:80\"" in compose and "depends_on:\n      - php" in compose
    web = (out / "k8s" / "web.yaml").read_text()
    assert "kind: Deployment" in web and "kind: Service" in web and "runtimeClassName" not in web


def test_second_build_is_all_cache_hits(demo: AppDir) -> None:
    demo.build()
    again = demo.build()
    assert again.count("executed") == 0 and again.count("cached") > 5


def test_php_change_rebuilds_only_its_volume_and_image(demo: AppDir) -> None:
    demo.build()
    (demo.root / "php" / "index.php").write_text("<?php echo 'v2';\n")
    again = demo.build()
    assert executed(again, "app") == {"php-app", "php.launcher"}
    assert all(not executed(again, scope) for scope in again.results if scope != "app")


def test_generated_files_are_deterministic(demo: AppDir, tmp_path: Path) -> None:
    """Two cold builds (separate caches, output dirs): the same compose, manifests and images."""
    first = demo.build("out1")
    demo.cache = tmp_path / "other-cache"
    second = demo.build("out2")
    for a, b in zip(first.manifests, second.manifests, strict=True):
        assert a.read_bytes() == b.read_bytes()
    for name in ("web", "php"):
        assert (first.launchers[name] / "index.json").read_bytes() == (second.launchers[name] / "index.json").read_bytes()


@pytest.mark.realtool("docker-compose")
def test_compose_file_validates(demo: AppDir) -> None:
    out = demo.build().out_dir
    proc = subprocess.run(["docker-compose", "-f", str(out / "compose.yaml"), "config"], capture_output=True,
                          text=True, timeout=60, cwd=out)
    assert proc.returncode == 0, proc.stderr
    assert "127.0.0.1" in proc.stdout and "demo-php" in proc.stdout


def k8s_documents(out: Path) -> list[dict[str, object]]:
    import yaml

    docs = []
    for path in sorted((out / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def validate_k8s(out: Path) -> list[str]:
    require_module("kubernetes_validate", "kubernetes-validate")
    import kubernetes_validate

    docs = k8s_documents(out)
    version = kubernetes_validate.latest_version()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    return [str(d["kind"]) for d in docs]


def test_kubernetes_manifests_validate(demo: AppDir) -> None:
    kinds = validate_k8s(demo.build().out_dir)
    assert kinds == ["Deployment", "Service", "Deployment", "Service"]


def test_kubernetes_validator_catches_mistakes(tmp_path: Path) -> None:
    """The validator is really checking: a Deployment without containers fails."""
    require_module("kubernetes_validate", "kubernetes-validate")
    import kubernetes_validate

    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"selector": {}, "template": {"spec": {"containerz": []}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def test_yaml_writer_round_trips() -> None:
    import yaml

    value = {"a": [1, "on", {"b": "x: y", "c": []}], "d": {}, "e": "10.0.0.1", "f": True, "g": [[1, 2]]}
    assert yaml.safe_load(to_yaml(value)) == value


def test_removed_service_loses_its_manifest(demo: AppDir) -> None:
    demo.build()
    text = demo.file.read_text().replace('links = ["php"]\n', "")
    demo.file.write_text(text.replace('[service.php]\n', '[service.php]\ncontainer = "none"\n'))
    result = demo.build()
    assert sorted(p.name for p in result.manifests) == ["compose.yaml", "web.yaml"]
    assert not (result.out_dir / "k8s" / "php.yaml").exists()
    assert "php" not in load_app(demo.file).services["web"].links
