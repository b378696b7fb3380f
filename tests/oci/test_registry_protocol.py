"""Protocol details against a small in-process fake registry (stdlib http.server):
the Bearer token flow, chunked uploads, the referrers API and digest checks."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest

from ukbuild.errors import EmitError
from ukbuild.oci.model import BUILD_RECORD_TYPE, Blob, artifact_manifest, canonical_json
from ukbuild.oci.registry import Credentials, RegistryClient
from ukbuild.oci.urunc import UruncSpec, urunc_image

TOKEN = "tok-123"
PASSWORD = "pa55-word"


@attrs.define
class Fake:
    port: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = attrs.field(factory=list)
    blobs: dict[str, bytes] = attrs.field(factory=dict)
    uploads: dict[str, bytearray] = attrs.field(factory=dict)
    manifests: dict[str, bytes] = attrs.field(factory=dict)
    referrers_api: bool = False
    lie_about_digest: bool = False
    huge_answers: bool = False


def _handler(fake: Fake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(
            self, code: int, headers: dict[str, str] | None = None, body: bytes = b""
        ) -> None:
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            fake.requests.append((self.command, self.path, dict(self.headers)))
            path, _, query = self.path.partition("?")
            if path == "/token":
                expected = "Basic " + base64.b64encode(f"builder:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._reply(401)
                return self._reply(200, body=json.dumps({"token": TOKEN}).encode())
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                challenge = f'Bearer realm="http://127.0.0.1:{fake.port}/token",service="fake"'
                return self._reply(401, {"WWW-Authenticate": challenge})
            if path == "/v2/":
                return self._reply(200)
            parts = path.split("/")
            if "blobs" in parts and self.command == "HEAD":
                return self._reply(200 if parts[-1] in fake.blobs else 404)
            if path.endswith("/blobs/uploads/") and self.command == "POST":
                upload = f"{path}u{len(fake.uploads)}"
                fake.uploads[upload] = bytearray()
                return self._reply(202, {"Location": upload})
            if path in fake.uploads and self.command == "PATCH":
                fake.uploads[path] += body
                return self._reply(202, {"Location": path + "?state=x"})
            if path in fake.uploads and self.command == "PUT":
                digest = query.split("digest=")[1].replace("%3A", ":")
                data = bytes(fake.uploads.pop(path) + body)
                assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
                fake.blobs[digest] = data
                return self._reply(201, {"Docker-Content-Digest": digest})
            if "manifests" in parts and self.command == "PUT":
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                fake.manifests[parts[-1]] = body
                headers = {
                    "Docker-Content-Digest": "sha256:" + "0" * 64
                    if fake.lie_about_digest
                    else digest
                }
                if fake.referrers_api and "subject" in json.loads(body):
                    headers["OCI-Subject"] = json.loads(body)["subject"]["digest"]
                return self._reply(201, headers)
            if "manifests" in parts and self.command == "GET":
                if fake.huge_answers:  # an index far beyond any real one (a hostile registry)
                    return self._reply(200, body=b'{"manifests": [' + b" " * (5 << 20) + b"]}")
                if parts[-1] in fake.manifests:
                    return self._reply(200, body=fake.manifests[parts[-1]])
                return self._reply(
                    404, body=b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}'
                )
            return self._reply(400)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _handle

    return Handler


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _image() -> Any:
    return urunc_image(UruncSpec("unikraft", "qemu"), bytes(range(256)) * 40, compression="none")


def _client(fake: Fake, password: str = PASSWORD, **kwargs: Any) -> RegistryClient:
    return RegistryClient(
        f"127.0.0.1:{fake.port}",
        insecure=True,
        credentials=Credentials("builder", password),
        **kwargs,
    )


def test_bearer_flow_chunked_upload_and_no_secrets_in_logs(
    fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ukbuild.oci")
    image = _image()
    report = _client(fake, chunk_size=1000).push("team/app", "v1", image)
    assert fake.blobs[image.layers[0].digest] == image.layers[0].data
    assert fake.manifests["v1"] == image.blob.data and report.digest == image.digest
    token_requests = [r for r in fake.requests if r[1].startswith("/token")]
    assert len(token_requests) == 1
    assert (
        "scope=repository%3Ateam%2Fapp%3Apull%2Cpush" in token_requests[0][1]
        and "service=fake" in token_requests[0][1]
    )
    patches = [r for r in fake.requests if r[0] == "PATCH"]
    assert len(patches) == (image.layers[0].size + 999) // 1000
    assert patches[0][2]["Content-Range"] == "0-999"
    # the token (not the password) is what the registry sees after the challenge
    assert all(r[2].get("Authorization") == f"Bearer {TOKEN}" for r in fake.requests[3:])
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text and "pushed" in caplog.text
    assert PASSWORD not in repr(Credentials("builder", PASSWORD))


def test_refused_token_is_a_clear_error(fake: Fake) -> None:
    with pytest.raises(EmitError) as err:
        _client(fake, password="nope").push("team/app", "v1", _image())
    assert err.value.reason == "registry-auth" and "refused the credentials" in err.value.message
    assert "nope" not in err.value.message + (err.value.hint or "") + (err.value.detail or "")


def test_digest_mismatch_is_an_error(fake: Fake) -> None:
    fake.lie_about_digest = True
    with pytest.raises(EmitError) as err:
        _client(fake).push("team/app", "v1", _image())
    assert err.value.reason == "digest-mismatch" and "rewrote" in (err.value.hint or "")


def test_referrers_api_needs_no_fallback_tag(fake: Fake) -> None:
    fake.referrers_api = True
    image = _image()
    record = artifact_manifest(
        image, BUILD_RECORD_TYPE, [Blob(BUILD_RECORD_TYPE, canonical_json({}))]
    )
    report = _client(fake).push("team/app", "v1", image, referrers=[record])
    assert report.referrers_fallback_tags == ()
    assert set(fake.manifests) == {"v1", record.digest}


def test_huge_answer_is_refused(fake: Fake) -> None:
    """A registry answering with more than a manifest may hold (here: the referrers index it
    is asked for) is an error; the body is not read into memory."""
    fake.huge_answers = True
    image = _image()
    record = artifact_manifest(image, BUILD_RECORD_TYPE, [Blob(BUILD_RECORD_TYPE, canonical_json({}))])
    with pytest.raises(EmitError) as err:
        _client(fake).push("team/app", "v1", image, referrers=[record])
    assert err.value.reason == "registry-response-too-large" and "more than 4 MiB" in err.value.message
