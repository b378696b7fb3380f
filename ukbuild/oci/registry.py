"""Push images to a registry over the OCI distribution API (stdlib ``urllib``).

Blobs the registry already has are skipped (HEAD), the rest are uploaded in
one PUT or in PATCH chunks; manifests go last, children before their index.
The registry's ``Docker-Content-Digest`` must equal the digest computed here,
otherwise the push fails: a registry that rewrote a manifest would break
every reference to it.  Artifacts with a ``subject`` are pushed as referrers;
when the registry does not answer with ``OCI-Subject`` (no referrers API),
the ``sha256-<hex>`` tag index of the distribution spec is updated instead.

Credentials only ever travel in ``Authorization`` headers: they are never
part of a URL, a message or a log record.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import Message
from pathlib import Path
from typing import Any

import attrs

from ukbuild.errors import EmitError

from .model import Blob, Descriptor, Index, Manifest, MediaType

log = logging.getLogger(__name__)

_REPOSITORY_RE = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z"
)
#: The most any registry response may hold: 4 MiB, the manifest size the distribution
#: spec asks registries to accept (responses here are manifests, indexes, tokens, errors).
MAX_RESPONSE = 4 << 20
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_HOST_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?\Z")
_CHALLENGE_PARAM_RE = re.compile(r'([A-Za-z_]+)="([^"]*)"')


@attrs.frozen
class Credentials:
    """Basic-auth credentials; the password is kept out of ``repr``."""

    username: str
    password: str = attrs.field(repr=False)

    def basic(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return "Basic " + token


@attrs.frozen
class PushReport:
    """What one push did: the tagged digest and which blobs had to be sent."""

    reference: str
    digest: str
    uploaded: tuple[str, ...]
    skipped: tuple[str, ...]
    manifests: tuple[str, ...]
    referrers_fallback_tags: tuple[str, ...] = ()


@attrs.define
class _Response:
    status: int
    headers: Message
    body: bytes


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (with or without a port)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed, so an Authorization header never goes elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class RegistryClient:
    """A push client for one registry host (``host[:port]``).

    TLS is verified against the system store or ``ca_file``.  ``insecure``
    means plain HTTP and is only accepted for loopback hosts (test
    registries).  ``chunk_size`` switches uploads of larger blobs to chunked
    PATCH requests.
    """

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        ca_file: Path | str | None = None,
        timeout: float = 60.0,
        chunk_size: int | None = None,
    ) -> None:
        if not _HOST_RE.match(host):
            raise EmitError(
                f"{host!r} is not a registry host",
                hint="write host[:port], e.g. registry.example.com or 127.0.0.1:5000; never put credentials in it",
                reason="bad-registry",
            )
        if insecure and not is_loopback(host):
            raise EmitError(
                f"plain HTTP to {host} is refused: insecure mode is only for loopback registries",
                hint="use TLS; for a private CA pass its certificate as ca_file",
                reason="bad-registry",
            )
        if chunk_size is not None and chunk_size <= 0:
            raise EmitError("chunk_size must be positive", reason="bad-registry")
        self.host = host
        self.base = f"{'http' if insecure else 'https'}://{host}"
        self.chunk_size = chunk_size
        self.timeout = timeout
        self._credentials = credentials
        self._authorization: str | None = None
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if not insecure:
            try:
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise EmitError(
                    f"cannot load CA file {ca_file}: {exc}", reason="bad-registry"
                ) from exc
            handlers.append(urllib.request.HTTPSHandler(context=context))
        if is_loopback(host):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    # -- public API -------------------------------------------------------

    def push(
        self,
        repository: str,
        tag: str,
        target: Manifest | Index,
        *,
        referrers: Sequence[Manifest] = (),
    ) -> PushReport:
        """Push ``target`` as ``repository:tag``, then its ``referrers``."""
        if not _REPOSITORY_RE.match(repository):
            raise EmitError(
                f"{repository!r} is not a repository name",
                hint="lowercase letters and digits, separated by '.', '_', '-' or '/'",
                reason="bad-tag",
            )
        if not _TAG_RE.match(tag):
            raise EmitError(f"{tag!r} is not a registry tag", reason="bad-tag")
        for referrer in referrers:
            if referrer.subject is None:
                raise EmitError(
                    f"artifact {referrer.digest} has no subject", reason="dangling-referrer"
                )
        self._authenticate(repository)
        uploaded: list[str] = []
        skipped: list[str] = []
        manifests: list[str] = []
        children = target.manifests if isinstance(target, Index) else ()
        for item in (*children, *([target] if isinstance(target, Manifest) else []), *referrers):
            for blob in (item.config, *item.layers):
                if blob.digest in uploaded or blob.digest in skipped:
                    continue
                if self._blob_exists(repository, blob.digest):
                    skipped.append(blob.digest)
                else:
                    self._upload_blob(repository, blob)
                    uploaded.append(blob.digest)
        for child in children:
            self._put_manifest(repository, child.digest, child.blob)
            manifests.append(child.digest)
        self._put_manifest(repository, tag, target.blob)
        manifests.append(target.digest)
        fallback: list[str] = []
        for referrer in referrers:
            headers = self._put_manifest(repository, referrer.digest, referrer.blob)
            manifests.append(referrer.digest)
            if not headers.get("OCI-Subject"):
                tag_name = self._update_referrers_tag(repository, referrer)
                if tag_name not in fallback:
                    fallback.append(tag_name)
        log.info(
            "pushed %s/%s:%s (%s): %d blobs uploaded, %d already there",
            self.host,
            repository,
            tag,
            target.digest,
            len(uploaded),
            len(skipped),
        )
        return PushReport(
            f"{self.host}/{repository}:{tag}",
            target.digest,
            tuple(uploaded),
            tuple(skipped),
            tuple(manifests),
            tuple(fallback),
        )

    # -- blobs and manifests ---------------------------------------------

    def _blob_exists(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository)
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        raise self._error(response, f"checking blob {digest} in {repository}")

    def _upload_blob(self, repository: str, blob: Blob) -> None:
        response = self._request(
            "POST", f"/v2/{repository}/blobs/uploads/", repository=repository, body=b""
        )
        if response.status != 202:
            raise self._error(response, f"starting an upload to {repository}")
        location = self._location(response)
        if self.chunk_size is not None and blob.size > self.chunk_size:
            for start in range(0, blob.size, self.chunk_size):
                chunk = blob.data[start : start + self.chunk_size]
                response = self._request(
                    "PATCH",
                    location,
                    repository=repository,
                    body=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + len(chunk) - 1}",
                    },
                )
                if response.status != 202:
                    raise self._error(response, f"uploading blob {blob.digest} to {repository}")
                location = self._location(response)
            body = b""
        else:
            body = blob.data
        separator = "&" if "?" in location else "?"
        response = self._request(
            "PUT",
            f"{location}{separator}digest={urllib.parse.quote(blob.digest)}",
            repository=repository,
            body=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        if response.status != 201:
            raise self._error(response, f"uploading blob {blob.digest} to {repository}")
        self._check_digest(response, blob.digest, f"blob in {repository}")
        log.debug("uploaded %s (%d bytes) to %s", blob.digest, blob.size, repository)

    def _put_manifest(self, repository: str, reference: str, blob: Blob) -> Message:
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            body=blob.data,
            headers={"Content-Type": blob.media_type},
        )
        if response.status not in (200, 201):
            raise self._error(
                response, f"registry refused manifest {blob.digest} for {repository}:{reference}"
            )
        self._check_digest(response, blob.digest, f"manifest {repository}:{reference}")
        return response.headers

    def _update_referrers_tag(self, repository: str, referrer: Manifest) -> str:
        """Add ``referrer`` to the ``sha256-<hex>`` index of its subject."""
        assert referrer.subject is not None
        tag = referrer.subject.digest.replace(":", "-")
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{tag}",
            repository=repository,
            headers={"Accept": MediaType.INDEX},
        )
        entries: list[dict[str, Any]] = []
        if response.status == 200:
            try:
                entries = list(json.loads(response.body)["manifests"])
            except (ValueError, KeyError, TypeError) as exc:
                raise EmitError(
                    f"the referrers tag {repository}:{tag} does not hold an image index",
                    reason="registry-refused",
                ) from exc
        elif response.status != 404:
            raise self._error(response, f"reading referrers tag {repository}:{tag}")
        if any(entry.get("digest") == referrer.digest for entry in entries):
            return tag
        manifest_json = json.loads(referrer.blob.data)
        descriptor = Descriptor(
            MediaType.MANIFEST,
            referrer.digest,
            referrer.blob.size,
            annotations=manifest_json.get("annotations", {}),
            artifact_type=referrer.artifact_type,
        )
        entries.append(descriptor.to_json())
        index = Blob.json(
            MediaType.INDEX,
            {"schemaVersion": 2, "mediaType": MediaType.INDEX, "manifests": entries},
        )
        self._put_manifest(repository, tag, index)
        return tag

    # -- HTTP and authentication -----------------------------------------

    def _authenticate(self, repository: str) -> None:
        response = self._request("GET", "/v2/", repository=repository, retry_auth=False)
        if response.status == 401:
            self._answer_challenge(response, repository)
            response = self._request("GET", "/v2/", repository=repository, retry_auth=False)
            if response.status == 401:
                raise EmitError(
                    f"registry {self.host} refused the credentials",
                    hint="check the username and password (or token)",
                    reason="registry-auth",
                )
        if response.status != 200:
            raise self._error(
                response, f"registry {self.host} did not accept the API check (GET /v2/)"
            )

    def _answer_challenge(self, response: _Response, repository: str) -> None:
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM_RE.findall(params_text))
        if scheme.lower() == "basic":
            if self._credentials is None:
                raise EmitError(
                    f"registry {self.host} requires a login",
                    hint="pass credentials (username and password or token)",
                    reason="registry-auth",
                )
            self._authorization = self._credentials.basic()
        elif scheme.lower() == "bearer":
            self._authorization = "Bearer " + self._fetch_token(params, repository)
        else:
            raise EmitError(
                f"registry {self.host} asks for an unsupported authentication scheme {scheme!r}",
                reason="registry-auth",
            )

    def _fetch_token(self, params: Mapping[str, str], repository: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise EmitError(
                f"registry {self.host} sent a Bearer challenge without a realm",
                reason="registry-auth",
            )
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise EmitError(f"registry {self.host} sent a bad token realm", reason="registry-auth")
        if parsed.scheme != "https" and not is_loopback(parsed.netloc):
            raise EmitError(
                f"registry {self.host} wants tokens from a plain-HTTP service; refusing to send credentials there",
                reason="registry-auth",
            )
        query = {"scope": f"repository:{repository}:pull,push"}
        if params.get("service"):
            query["service"] = params["service"]
        separator = "&" if parsed.query else "?"
        url = realm + separator + urllib.parse.urlencode(sorted(query.items()))
        headers = {"Authorization": self._credentials.basic()} if self._credentials else {}
        response = self._send(urllib.request.Request(url, headers=headers, method="GET"))
        if response.status in (401, 403):
            raise EmitError(
                f"the token service of {self.host} refused the credentials for {repository}",
                hint="check the username and password (or token)",
                reason="registry-auth",
            )
        if response.status != 200:
            raise self._error(response, f"fetching a token for {repository}")
        try:
            answer = json.loads(response.body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise EmitError(
                f"the token service of {self.host} sent no token", reason="registry-auth"
            )
        return token

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        repository: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry_auth: bool = True,
    ) -> _Response:
        url = urllib.parse.urljoin(self.base + "/", path_or_url)
        parts = urllib.parse.urlsplit(url)
        same_host = parts.netloc == self.host
        if not same_host and parts.scheme != "https" and not is_loopback(parts.netloc):
            raise EmitError(
                f"registry {self.host} sent a plain-HTTP location on another host",
                reason="registry-refused",
            )
        all_headers = dict(headers or {})
        if self._authorization and same_host:
            all_headers["Authorization"] = self._authorization
        response = self._send(
            urllib.request.Request(url, data=body, headers=all_headers, method=method)
        )
        if response.status == 401 and retry_auth and same_host:
            if self._authorization is not None and self._authorization.startswith("Basic"):
                raise self._error(
                    response, f"registry {self.host} refused the credentials for {repository}"
                )
            self._answer_challenge(response, repository)
            all_headers["Authorization"] = self._authorization or ""
            response = self._send(
                urllib.request.Request(url, data=body, headers=all_headers, method=method)
            )
        return response

    def _send(self, request: urllib.request.Request) -> _Response:
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return _Response(answer.status, answer.headers, self._body(answer))
        except urllib.error.HTTPError as answer:
            with answer:
                return _Response(answer.code, answer.headers, self._body(answer))
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise EmitError(
                    f"TLS certificate of {self.host} not trusted: {reason.verify_message}",
                    hint="pass the registry's CA certificate as ca_file",
                    reason="registry-tls",
                ) from exc
            raise EmitError(
                f"cannot reach registry {self.host}: {reason}",
                hint="check the host and port, and that the registry is running",
                reason="registry-unreachable",
                temporary=True,
            ) from exc
        except (TimeoutError, ConnectionError, ssl.SSLError) as exc:
            raise EmitError(
                f"connection to registry {self.host} failed: {exc}",
                reason="registry-unreachable",
                temporary=True,
            ) from exc

    def _body(self, answer: Any) -> bytes:
        """The response body; more than a manifest may hold is refused, not read into memory."""
        body = answer.read(MAX_RESPONSE + 1)
        if len(body) > MAX_RESPONSE:
            raise EmitError(
                f"registry {self.host} answered with more than {MAX_RESPONSE >> 20} MiB",
                hint="manifests, indexes and tokens are far smaller: check the registry address",
                reason="registry-response-too-large",
            )
        return body

    def _location(self, response: _Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise EmitError(
                f"registry {self.host} sent no upload location", reason="registry-refused"
            )
        return location

    def _check_digest(self, response: _Response, expected: str, what: str) -> None:
        got = response.headers.get("Docker-Content-Digest")
        if got is not None and got != expected:
            raise EmitError(
                f"registry {self.host} stored {what} as {got}, but its digest is {expected}",
                hint="the registry rewrote the content; references to this image would break",
                reason="digest-mismatch",
            )

    def _error(self, response: _Response, doing: str) -> EmitError:
        detail = None
        try:
            errors = json.loads(response.body).get("errors", [])
            detail = (
                "\n".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors) or None
            )
        except (ValueError, AttributeError):
            pass
        if response.status == 401:
            return EmitError(
                f"{doing}: authentication failed (HTTP 401)",
                detail=detail,
                hint="check the username and password (or token)",
                reason="registry-auth",
            )
        if response.status == 403:
            return EmitError(
                f"{doing}: access denied (HTTP 403)",
                detail=detail,
                hint="the account may lack push rights on this repository",
                reason="registry-auth",
            )
        return EmitError(
            f"{doing}: HTTP {response.status}",
            detail=detail,
            reason="registry-refused",
            temporary=response.status >= 500,
        )
