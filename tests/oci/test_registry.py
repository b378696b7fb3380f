"""Pushing with our client to Debian's docker-registry, checked with skopeo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ukbuild.errors import EmitError
from ukbuild.oci.kraftkit import kraftkit_manifest
from ukbuild.oci.model import (
    BUILD_RECORD_TYPE,
    Blob,
    Manifest,
    artifact_manifest,
    canonical_json,
    image_index,
)
from ukbuild.oci.registry import Credentials, RegistryClient
from ukbuild.oci.urunc import UruncSpec, urunc_image

KERNEL = b"\x7fELF" + bytes(range(256)) * 300


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["skopeo", *args], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stderr}"
    return result


def _image(compression: str = "gzip", kernel: bytes = KERNEL) -> Manifest:
    return urunc_image(
        UruncSpec("unikraft", "qemu"), kernel, cmd=["hello"], compression=compression, created=0
    )  # type: ignore[arg-type]


@pytest.mark.realtool("docker-registry", "skopeo")
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_push_inspect_pull_round_trip(registry: Any, tmp_path: Path, compression: str) -> None:
    image = _image(compression)
    client = RegistryClient(registry.host, insecure=True)
    report = client.push("ukbuild/hello", "v1", image)
    assert report.digest == image.digest
    assert (
        set(report.uploaded) == {image.config.digest, image.layers[0].digest}
        and report.skipped == ()
    )
    url = f"docker://{registry.host}/ukbuild/hello:v1"
    assert (
        _skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", url).stdout.strip()
        == image.digest
    )
    out = tmp_path / "pulled"
    _skopeo("copy", "--preserve-digests", "--src-tls-verify=false", url, f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == image.blob.data
    for blob in (image.config, image.layers[0]):
        assert (out / blob.digest[7:]).read_bytes() == blob.data

    again = client.push("ukbuild/hello", "v1", image)
    assert again.uploaded == () and set(again.skipped) == set(report.uploaded)
    assert again.digest == image.digest


@pytest.mark.realtool("docker-registry", "skopeo")
def test_chunked_upload_index_and_referrers_fallback(registry: Any, tmp_path: Path) -> None:
    amd64 = _image()
    kraft = kraftkit_manifest(KERNEL)
    index = image_index([amd64, kraft])
    record = artifact_manifest(
        amd64, BUILD_RECORD_TYPE, [Blob(BUILD_RECORD_TYPE, canonical_json({"recipe": "x"}))]
    )
    client = RegistryClient(registry.host, insecure=True, chunk_size=4096)
    report = client.push("ukbuild/multi", "latest", index, referrers=[record])
    assert report.digest == index.digest
    assert report.manifests == (amd64.digest, kraft.digest, index.digest, record.digest)
    # docker-registry 2.8 has no referrers API, so the sha256-<hex> tag index is written
    (fallback_tag,) = report.referrers_fallback_tags
    assert fallback_tag == "sha256-" + amd64.digest[7:]
    url = f"docker://{registry.host}/ukbuild/multi"
    raw = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw", f"{url}:latest").stdout)
    assert canonical_json(raw) == index.blob.data
    picked = json.loads(_skopeo("inspect", "--tls-verify=false", f"{url}:latest").stdout)
    assert picked["Digest"] == index.digest and picked["Os"] == "linux"
    fallback = json.loads(
        _skopeo("inspect", "--tls-verify=false", "--raw", f"{url}:{fallback_tag}").stdout
    )
    assert fallback["manifests"] == [
        {"mediaType": record.blob.media_type, "digest": record.digest, "size": record.blob.size,
         "artifactType": BUILD_RECORD_TYPE},
    ]  # fmt: skip
    # a second push keeps one entry per referrer and uploads nothing
    again = client.push("ukbuild/multi", "latest", index, referrers=[record])
    assert again.uploaded == ()
    fallback = json.loads(
        _skopeo("inspect", "--tls-verify=false", "--raw", f"{url}:{fallback_tag}").stdout
    )
    assert len(fallback["manifests"]) == 1
    out = tmp_path / "pulled"
    _skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"{url}:latest",
        f"oci:{out}:x",
    )
    assert json.loads((out / "index.json").read_bytes())["manifests"][0]["digest"] == index.digest


@pytest.mark.realtool("docker-registry", "skopeo", "htpasswd", "openssl")
def test_basic_auth_over_tls(auth_registry: Any, tmp_path: Path) -> None:
    image = _image()
    creds = Credentials(auth_registry.username, auth_registry.password)
    client = RegistryClient(auth_registry.host, credentials=creds, ca_file=auth_registry.ca_file)
    report = client.push("ukbuild/secret", "v1", image)
    assert len(report.uploaded) == 2
    url = f"docker://{auth_registry.host}/ukbuild/secret:v1"
    inspected = _skopeo(
        "inspect",
        "--tls-verify=false",
        *auth_registry.skopeo_creds(),
        "--format",
        "{{.Digest}}",
        url,
    )
    assert inspected.stdout.strip() == image.digest
    out = tmp_path / "pulled"
    _skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds",
            f"{auth_registry.username}:{auth_registry.password}", url, f"dir:{out}")  # fmt: skip
    assert (out / "manifest.json").read_bytes() == image.blob.data
    assert client.push("ukbuild/secret", "v1", image).uploaded == ()


@pytest.mark.realtool("docker-registry", "htpasswd", "openssl")
def test_refused_credentials_and_untrusted_tls(auth_registry: Any) -> None:
    wrong = RegistryClient(
        auth_registry.host,
        credentials=Credentials("builder", "wrong-password"),
        ca_file=auth_registry.ca_file,
    )
    with pytest.raises(EmitError) as err:
        wrong.push("ukbuild/secret", "v1", _image())
    assert err.value.reason == "registry-auth"
    assert "refused the credentials" in err.value.message and "wrong-password" not in str(
        vars(err.value)
    )
    anonymous = RegistryClient(auth_registry.host, ca_file=auth_registry.ca_file)
    with pytest.raises(EmitError, match="requires a login"):
        anonymous.push("ukbuild/secret", "v1", _image())
    untrusted = RegistryClient(
        auth_registry.host, credentials=Credentials("builder", auth_registry.password)
    )
    with pytest.raises(EmitError) as err:
        untrusted.push("ukbuild/secret", "v1", _image())
    assert err.value.reason == "registry-tls" and "ca_file" in (err.value.hint or "")


def test_insecure_only_for_loopback_and_bad_names() -> None:
    with pytest.raises(EmitError, match="only for loopback"):
        RegistryClient("registry.example.com", insecure=True)
    RegistryClient("localhost:5000", insecure=True)
    RegistryClient("[::1]:5000", insecure=True)
    with pytest.raises(EmitError, match="not a registry host"):
        RegistryClient("user:pw@127.0.0.1:5000", insecure=True)
    client = RegistryClient("127.0.0.1:1", insecure=True)
    with pytest.raises(EmitError, match="not a repository name"):
        client.push("UPPER/case", "v1", _image())
    with pytest.raises(EmitError, match="not a registry tag"):
        client.push("ok", "-bad", _image())


def test_unreachable_registry_is_a_temporary_emit_error() -> None:
    import socket

    with socket.socket() as sock:  # a port that is certainly closed: bound, never listening
        sock.bind(("127.0.0.1", 0))
        client = RegistryClient(f"127.0.0.1:{sock.getsockname()[1]}", insecure=True, timeout=5)
        with pytest.raises(EmitError) as err:
            client.push("ukbuild/hello", "v1", _image())
    assert err.value.reason == "registry-unreachable" and err.value.temporary


@pytest.mark.realtool("docker-registry", "skopeo", "openssl")
def test_bearer_token_flow_against_the_real_registry(token_registry: Any, tmp_path: Path) -> None:
    image = _image()
    creds = Credentials(token_registry.username, token_registry.password)
    client = RegistryClient(token_registry.host, credentials=creds, insecure=True)
    report = client.push("ukbuild/tokens", "v1", image)
    assert report.digest == image.digest and len(report.uploaded) == 2
    url = f"docker://{token_registry.host}/ukbuild/tokens:v1"
    inspected = _skopeo(
        "inspect",
        "--tls-verify=false",
        *token_registry.skopeo_creds(),
        "--format",
        "{{.Digest}}",
        url,
    )
    assert inspected.stdout.strip() == image.digest
    assert client.push("ukbuild/tokens", "v1", image).uploaded == ()
    wrong = RegistryClient(
        token_registry.host, credentials=Credentials("builder", "nope"), insecure=True
    )
    with pytest.raises(EmitError) as err:
        wrong.push("ukbuild/tokens", "v1", image)
    assert err.value.reason == "registry-auth" and "token service" in err.value.message
