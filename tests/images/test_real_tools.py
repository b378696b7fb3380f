"""What ``ukbuild build`` emits, checked by the real tools: JSON schemas (plus the
``subject``/``artifactType`` rules the 1.1.0-rc2 schemas lack), skopeo, umoci, the SPDX
and build-record contents, and QEMU booting the raw disk and the ISO."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.oci.conftest import check_layout, validate  # noqa: F401 (fixtures)
from ukbuild.oci.layout import read_oci_layout, read_referrers
from ukbuild.oci.model import BUILD_RECORD_TYPE, SBOM_SPDX_TYPE
from ukbuild.runner import QemuLaunch, run

from .conftest import CMDLINE, run_ukbuild, write_example

TOOLS = ("gcc", "ld", "syslinux", "xorriso")
QEMU = "qemu-system-x86_64"
UNIKERNEL_CMDLINE = 'hello from the ukbuild example, args: a,b "c d"'


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The out dir of one ``ukbuild build --no-cache`` of every image format."""
    root = tmp_path_factory.mktemp("emitted")
    project = write_example(root / "multiboot")
    result = run_ukbuild("build", "-C", project, "--cache-dir", root / "cache", "--no-cache")
    assert result.code == 0, result.err
    return project / "out"


def _tool(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stderr}"
    return proc.stdout


def _unpack(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.mark.realtool(*TOOLS)
def test_layouts_pass_schemas_and_carry_provenance(
    out: Path, tmp_path: Path, check_layout: Callable[[Path], Any]  # noqa: F811
) -> None:
    """Both OCI outputs are complete, valid layouts; the image has a build record and an SBOM."""
    kernel = (out / "kernel" / "hello.elf").read_bytes()
    kernel_sha = hashlib.sha256(kernel).hexdigest()
    for layout in (out / "oci" / "hello-oci", _unpack(out / "image" / "hello-ocitar.oci.tar", tmp_path / "x")):
        report = check_layout(layout)
        target = read_oci_layout(layout, "latest")
        referrers = {r.artifact_type: r for r in read_referrers(layout, target)}
        assert set(referrers) == {BUILD_RECORD_TYPE, SBOM_SPDX_TYPE}
        image = target.manifests[0] if hasattr(target, "manifests") else target
        for referrer in referrers.values():
            assert report.manifests[referrer.digest]["subject"]["digest"] == image.digest
        record = json.loads(referrers[BUILD_RECORD_TYPE].layers[0].data)
        assert record["unikernel"] == {"name": "hello", "kernelFormat": "multiboot-elf32", "cmdline": UNIKERNEL_CMDLINE}
        assert record["materials"] == [{"path": "kernel/hello.elf", "digest": f"sha256:{kernel_sha}", "size": len(kernel)}]
        check_spdx(json.loads(referrers[SBOM_SPDX_TYPE].layers[0].data), kernel_sha)


def check_spdx(doc: dict[str, Any], kernel_sha: str) -> None:
    """The fields SPDX 2.3 requires, and the kernel with its sha256 (and the mandatory SHA1)."""
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["SPDXID"] == "SPDXRef-DOCUMENT" and doc["documentNamespace"].startswith("https://")
    assert doc["creationInfo"] == {"created": "1970-01-01T00:00:00Z", "creators": ["Tool: ukbuild-emit"]}
    (package,) = doc["packages"]
    assert package["name"] == "hello" and package["downloadLocation"] == "NOASSERTION"
    assert package["checksums"] == [{"algorithm": "SHA256", "checksumValue": kernel_sha}]
    (file,) = doc["files"]
    assert file["fileName"] == "./kernel/hello.elf"
    assert {c["algorithm"] for c in file["checksums"]} == {"SHA1", "SHA256"}
    ids = {doc["SPDXID"], package["SPDXID"], file["SPDXID"]}
    for relation in doc["relationships"]:
        assert relation["spdxElementId"] in ids and relation["relatedSpdxElement"] in ids
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
            "relatedSpdxElement": package["SPDXID"]} in doc["relationships"]  # fmt: skip


@pytest.mark.realtool(*TOOLS, "skopeo")
def test_skopeo_inspects_and_copies_with_preserved_digests(out: Path, tmp_path: Path) -> None:
    layout = out / "oci" / "hello-oci"
    target = read_oci_layout(layout, "latest")
    raw = _tool("skopeo", "inspect", "--raw", f"oci:{layout}:latest")
    assert raw.encode() == target.blob.data
    for n, source in enumerate([f"oci:{layout}:latest", f"oci-archive:{out / 'image' / 'hello-ocitar.oci.tar'}:latest"]):
        inspected = json.loads(_tool("skopeo", "inspect", source))
        assert inspected["Os"] == "linux" and inspected["Architecture"] == "amd64"
        copied = tmp_path / f"dir{n}"
        _tool("skopeo", "copy", "--preserve-digests", source, f"dir:{copied}")
        manifest = json.loads((copied / "manifest.json").read_bytes())
        for descriptor in (manifest["config"], *manifest["layers"]):
            data = (copied / descriptor["digest"][7:]).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
    amd64 = target.manifests[0]  # type: ignore[union-attr]
    assert (tmp_path / "dir0" / "manifest.json").read_bytes() == amd64.blob.data
    docker = json.loads(_tool("skopeo", "inspect", f"docker-archive:{out / 'image' / 'hello-docker.docker.tar'}"))
    assert docker["Os"] == "linux" and docker["Architecture"] == "amd64"


@pytest.mark.realtool(*TOOLS, "umoci")
def test_umoci_unpacks_the_gzip_layer(out: Path, tmp_path: Path) -> None:
    """umoci checks blob digests and diff_ids; the bundle holds the kernel and the command line."""
    layout = _unpack(out / "image" / "hello-ocitar.oci.tar", tmp_path / "layout")
    bundle = tmp_path / "bundle"
    _tool("umoci", "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle))
    assert (bundle / "rootfs" / "kernel").read_bytes() == (out / "kernel" / "hello.elf").read_bytes()
    config = json.loads((bundle / "config.json").read_bytes())
    assert config["process"]["args"] == [UNIKERNEL_CMDLINE]


@pytest.mark.realtool(*TOOLS, QEMU)
@pytest.mark.parametrize(("image", "launch", "loader"), [
    ("hello-disk.img", "disk", "SYSLINUX 6."), ("hello-iso.iso", "iso", "ISOLINUX 6."),
])  # fmt: skip
def test_boots_with_the_json_cmdline_byte_for_byte(out: Path, image: str, launch: str, loader: str) -> None:
    result = run(QemuLaunch(**{launch: out / "image" / image}))
    lines = result.console.decode().split("\n")
    hello = lines.index("HELLO from ukbuild")
    assert lines[hello + 1].startswith(f"LOADER: {loader}")
    assert lines[hello + 2] == f"CMDLINE: kernel.elf {CMDLINE}"
    assert result.status == 0
