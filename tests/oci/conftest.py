"""Fixtures for the OCI tests: schema validation, a layout checker, registries.

The registries are Debian's ``docker-registry`` with a private config on a
free 127.0.0.1 port (xdist workers run side by side), stopped by their own
PID.  ``auth_registry`` adds htpasswd basic auth over TLS with a throwaway
self-signed certificate; ``token_registry`` uses the registry's token auth
with a small token service in the test process (the Bearer flow).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
import zstandard

SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema")
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"


# -- JSON schemas -------------------------------------------------------------


def _load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / Path(name).name).read_text())


@pytest.fixture(scope="session")
def validate() -> Callable[[str, Any], None]:
    """``validate("image-manifest-schema.json", doc)`` against Debian's draft-04 schemas.

    Every ``$ref`` is resolved by file basename from the local directory; the
    schemas' ``id`` URLs are never fetched.
    """
    if not SCHEMA_DIR.is_dir():
        pytest.skip(
            f"{SCHEMA_DIR} missing (apt-get install golang-github-opencontainers-image-spec-dev)"
        )
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        def retrieve(uri: str) -> Resource:
            return Resource.from_contents(
                _load_schema(uri.split("#")[0].rsplit("/", 1)[-1]), DRAFT4
            )

        registry: Any = Registry(retrieve=retrieve)  # type: ignore[call-arg]

        def validate_doc(schema_name: str, document: Any) -> None:
            validator = jsonschema.Draft4Validator(_load_schema(schema_name), registry=registry)
            validator.validate(document)

    except ImportError:  # jsonschema < 4.18 (Debian's python3-jsonschema 4.10)

        def validate_doc(schema_name: str, document: Any) -> None:
            schema = _load_schema(schema_name)
            handler = lambda uri: _load_schema(uri.split("#")[0].rsplit("/", 1)[-1])
            resolver = jsonschema.RefResolver.from_schema(
                schema, handlers={"https": handler, "http": handler}
            )
            jsonschema.Draft4Validator(schema, resolver=resolver).validate(document)

    return validate_doc


# -- layout checker -------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def uncompressed(media_type: str, data: bytes) -> bytes:
    if media_type.endswith("+gzip"):
        return gzip.decompress(data)
    if media_type.endswith("+zstd"):
        return zstandard.ZstdDecompressor().decompress(data)
    return data


@attrs.define
class LayoutReport:
    index: dict[str, Any]
    manifests: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    configs: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    layers: dict[str, bytes] = attrs.field(factory=dict)

    def tagged(self, tag: str) -> dict[str, Any]:
        (entry,) = [
            m
            for m in self.index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
        ]
        return entry


@pytest.fixture(scope="session")
def check_layout(validate: Callable[[str, Any], None]) -> Callable[[Path], LayoutReport]:
    """Check a layout completely: schemas, every blob's digest and size, diff_ids,
    tar headers, and the ``subject``/``artifactType`` rules the 1.1.0-rc2
    schemas do not know."""

    def check(root: Path) -> LayoutReport:
        layout = json.loads((root / "oci-layout").read_bytes())
        validate("image-layout-schema.json", layout)
        assert layout == {"imageLayoutVersion": "1.0.0"}
        index = json.loads((root / "index.json").read_bytes())
        validate("image-index-schema.json", index)
        assert index["mediaType"] == INDEX
        report = LayoutReport(index)

        def blob(descriptor: dict[str, Any]) -> bytes:
            algorithm, encoded = descriptor["digest"].split(":")
            assert algorithm == "sha256" and len(encoded) == 64
            data = (root / "blobs" / algorithm / encoded).read_bytes()
            assert len(data) == descriptor["size"], descriptor
            assert _sha256(data) == descriptor["digest"], descriptor
            return data

        def visit(descriptor: dict[str, Any]) -> None:
            data = blob(descriptor)
            document = json.loads(data)
            if descriptor["mediaType"] == INDEX:
                validate("image-index-schema.json", document)
                for child in document["manifests"]:
                    visit(child)
                return
            assert descriptor["mediaType"] == MANIFEST
            validate("image-manifest-schema.json", document)
            assert document["mediaType"] == MANIFEST
            report.manifests[descriptor["digest"]] = document
            config_data = blob(document["config"])
            if document["config"]["mediaType"] == CONFIG:
                config = json.loads(config_data)
                validate("config-schema.json", config)
                report.configs[document["config"]["digest"]] = config
                diff_ids = []
                for layer in document["layers"]:
                    raw = uncompressed(layer["mediaType"], blob(layer))
                    diff_ids.append(_sha256(raw))
                    report.layers[layer["digest"]] = raw
                    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                        names = [m.name for m in tar.getmembers()]
                        assert names == sorted(names)
                        for member in tar.getmembers():
                            assert (member.uid, member.gid, member.uname, member.gname) == (
                                0,
                                0,
                                "",
                                "",
                            )
                assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
                assert "artifactType" not in document
            else:
                assert document["config"]["digest"] == EMPTY_DIGEST and config_data == b"{}"
                assert (
                    isinstance(document.get("artifactType"), str)
                    and "/" in document["artifactType"]
                )
                for layer in document["layers"]:
                    blob(layer)
            if "subject" in document:
                subject = document["subject"]
                assert set(subject) == {"mediaType", "digest", "size"}
                assert subject["mediaType"] == MANIFEST
                assert blob(subject)  # the subject is in the layout and intact
                assert descriptor.get("artifactType") == document["artifactType"]

        for entry in index["manifests"]:
            visit(entry)
        return report

    return check


# -- registries ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.frozen
class Registry:
    host: str
    data: Path
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None

    def skopeo_creds(self) -> list[str]:
        return ["--creds", f"{self.username}:{self.password}"] if self.username else []


def _self_signed(root: Path) -> tuple[Path, Path]:
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _start_registry(root: Path, *, tls: bool, auth: dict[str, Any] | None) -> Iterator[Registry]:
    cert, key = _self_signed(root) if tls else (root / "none", root / "none")
    for _attempt in range(3):
        port = _free_port()
        http: dict[str, Any] = {"addr": f"127.0.0.1:{port}"}
        if tls:
            http["tls"] = {"certificate": str(cert), "key": str(key)}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(root / "data")},
                "delete": {"enabled": True},
            },
            "http": http,
        }
        if auth is not None:
            config["auth"] = auth
        (root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        with open(root / "registry.log", "ab") as log:
            process = subprocess.Popen(
                ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
            )
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if tls:
            context = ssl.create_default_context(cafile=str(cert))
            handlers.append(urllib.request.HTTPSHandler(context=context))
        opener = urllib.request.build_opener(*handlers)
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/"
        deadline = time.monotonic() + 15
        ready = False
        while not ready and time.monotonic() < deadline and process.poll() is None:
            try:
                opener.open(url, timeout=1).close()
                ready = True
            except urllib.error.HTTPError as exc:
                exc.close()
                ready = exc.code == 401
            except OSError:
                time.sleep(0.05)
        if ready:
            try:
                yield Registry(f"127.0.0.1:{port}", root / "data", cert if tls else None)
            finally:
                process.terminate()  # by its own PID
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            return
        if process.poll() is None:
            process.kill()
        process.wait()
    raise RuntimeError("docker-registry did not start:\n" + (root / "registry.log").read_text())


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A plain-HTTP registry without auth on a free loopback port."""
    if shutil.which("docker-registry") is None:
        pytest.skip("needs docker-registry")
    root = tmp_path / "registry"
    root.mkdir()
    yield from _start_registry(root, tls=False, auth=None)


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry with htpasswd (bcrypt) basic auth over TLS with a self-signed certificate."""
    for tool in ("docker-registry", "openssl", "htpasswd"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    root = tmp_path / "auth-registry"
    root.mkdir()
    entry = subprocess.run(
        ["htpasswd", "-Bbn", "builder", "s3cret-pw"], check=True, capture_output=True, text=True
    )
    (root / "htpasswd").write_text(entry.stdout.strip() + "\n")
    auth = {"htpasswd": {"realm": "ukbuild-test", "path": str(root / "htpasswd")}}
    for reg in _start_registry(root, tls=True, auth=auth):
        yield attrs.evolve(reg, username="builder", password="s3cret-pw")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _token_server(root: Path, username: str, password: str) -> tuple[ThreadingHTTPServer, str]:
    """A token service as the distribution token-auth spec describes: Basic auth
    in, an RS256 JWT out (signed with the openssl CLI, certificate in ``x5c``)."""
    cert, key = _self_signed(root)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            now = int(time.time())
            header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
            claims = {
                "iss": "ukbuild-test-issuer", "sub": username, "aud": query.get("service", [""])[0],
                "iat": now, "nbf": now - 10, "exp": now + 600, "jti": os.urandom(8).hex(), "access": access,
            }  # fmt: skip
            signing_input = (
                f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
            )
            signature = subprocess.run(
                ["openssl", "dgst", "-sha256", "-sign", str(key)],
                input=signing_input.encode(), capture_output=True, check=True,
            ).stdout  # fmt: skip
            body = json.dumps({"token": f"{signing_input}.{_b64url(signature)}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    return server, str(cert)


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[Registry]:
    """A plain-HTTP loopback registry with token auth and a token service in this process."""
    for tool in ("docker-registry", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    root = tmp_path / "token-registry"
    (root / "tokens").mkdir(parents=True)
    server, cert = _token_server(root / "tokens", "builder", "t0ken-pw")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    auth = {
        "token": {
            "realm": f"http://127.0.0.1:{server.server_address[1]}/token",
            "service": "ukbuild-test",
            "issuer": "ukbuild-test-issuer",
            "rootcertbundle": cert,
        }
    }
    try:
        for reg in _start_registry(root, tls=False, auth=auth):
            yield attrs.evolve(reg, username="builder", password="t0ken-pw")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
