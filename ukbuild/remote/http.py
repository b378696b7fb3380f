"""An HTTP cache speaking bazel-remote's protocol, with the standard library only.

``HEAD``/``GET``/``PUT`` on ``<base>[/<instance>]/cas/<sha256>`` for blobs and
``<base>[/<instance>]/ac/<key>`` for REAPI ``ActionResult`` bytes.  The same
client works against bazel-remote, nginx with WebDAV ``PUT``, and other
servers people use as Bazel HTTP caches.  HTTP has no FindMissingBlobs, so
existence checks, uploads and downloads fan out over a small thread pool
(each thread keeps its own keep-alive connection).
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .._reapi import ActionResult, Digest
from .._store import Store
from ..errors import StoreError
from . import _wire
from ._base import EMPTY, Blob, RemoteCache, RemoteError, Sink, corrupt
from .config import RemoteConfig

CHUNK = 1 << 20
T = TypeVar("T")
R = TypeVar("R")


class HttpCache(RemoteCache):
    def __init__(self, config: RemoteConfig, *, workers: int = 8) -> None:
        parts = urllib.parse.urlsplit(config.url)
        self.name = config.url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        prefix = parts.path.rstrip("/")
        if config.instance:
            prefix += "/" + urllib.parse.quote(config.instance.strip("/"))
        self._prefix = prefix
        self._timeout = config.timeout
        self._headers: dict[str, str] = {}
        if config.username is not None:
            token = f"{config.username}:{config.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        self._ssl = ssl.create_default_context(cafile=config.ca_file) if self._https else None
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ukbuild-http")

    # --- transport ------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._ssl
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _request(
        self,
        method: str,
        path: str,
        body: Blob | bytes | None = None,
        read: Callable[[http.client.HTTPResponse], T] | None = None,
    ) -> tuple[int, T | None]:
        """One request on this thread's connection; the status and what ``read`` made of it.

        A connection the server closed while idle is reopened once; any other
        transport failure becomes a ``RemoteError`` naming the remote, never
        its credentials.
        """
        headers = dict(self._headers)
        if isinstance(body, Blob):
            headers["Content-Length"] = str(body.digest.size)
        url = self._prefix + path
        for attempt in (1, 2):
            payload: object = body
            if isinstance(body, Blob):
                payload = body.data if body.data is not None else body.chunks(CHUNK)
            conn = self._connection()
            try:
                conn.request(method, url, body=payload, headers=headers)  # type: ignore[arg-type]
                response = conn.getresponse()
                if response.status == 200 and read is not None:
                    return 200, read(response)
                response.read()
                return response.status, None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if attempt == 2:
                    raise RemoteError(
                        f"{self.name}: connection lost ({exc})", retryable=True
                    ) from None
            except TimeoutError:
                conn.close()
                raise RemoteError(f"{self.name}: no answer within {self._timeout:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise RemoteError(
                    f"{self.name}: {method} failed: {detail or type(exc).__name__}",
                    retryable=isinstance(exc, ConnectionError),
                ) from None
        raise AssertionError("unreachable")

    def _fail(self, method: str, path: str, status: int) -> RemoteError:
        hint = {401: " (credentials refused)", 403: " (forbidden)"}.get(status, "")
        return RemoteError(
            f"{self.name}: {method} {path} answered HTTP {status}{hint}", retryable=status >= 500
        )

    def _map(self, fn: Callable[[T], R], items: Collection[T]) -> list[R]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    # --- RemoteCache ------------------------------------------------------------

    def find_missing(self, digests: Collection[Digest]) -> set[Digest]:
        def present(digest: Digest) -> bool:
            path = f"/cas/{digest.hash}"
            status, _ = self._request("HEAD", path)
            if status in (200, 404):
                return status == 200
            raise self._fail("HEAD", path, status)

        wanted = [d for d in set(digests) if d != EMPTY]
        return {d for d, ok in zip(wanted, self._map(present, wanted), strict=True) if not ok}

    def upload_blobs(self, blobs: Collection[Blob]) -> None:
        def put(blob: Blob) -> None:
            path = f"/cas/{blob.digest.hash}"
            status, _ = self._request("PUT", path, blob)
            if status not in (200, 201, 204):
                raise self._fail("PUT", path, status)

        self._map(put, [b for b in blobs if b.digest != EMPTY])

    def download_blobs(self, digests: Collection[Digest], store: Store) -> set[Digest]:
        def get(digest: Digest) -> str:
            """'ok', 'missing' or 'corrupt'."""
            if digest == EMPTY:
                store.put_bytes(b"")
                return "ok"
            sink = Sink(store, digest)

            def receive(response: http.client.HTTPResponse) -> bool:
                while chunk := response.read(CHUNK):
                    sink.write(chunk)
                return sink.commit()

            path = f"/cas/{digest.hash}"
            try:
                status, ok = self._request("GET", path, read=receive)
            finally:
                sink.discard()
            if status == 404:
                return "missing"
            if status != 200:
                raise self._fail("GET", path, status)
            return "ok" if ok else "corrupt"

        wanted = sorted(set(digests))
        outcomes = dict(zip(wanted, self._map(get, wanted), strict=True))
        bad = [d for d, outcome in outcomes.items() if outcome == "corrupt"]
        if bad:
            raise corrupt(self.name, bad)
        return {d for d, outcome in outcomes.items() if outcome == "missing"}

    def get_action_result(self, key: Digest) -> ActionResult | None:
        path = f"/ac/{key.hash}"
        status, data = self._request("GET", path, read=lambda r: r.read())
        if status == 404:
            return None
        if status != 200 or data is None:
            raise self._fail("GET", path, status)
        try:
            return _wire.action_result(data)
        except (StoreError, ValueError) as exc:
            raise RemoteError(
                f"{self.name}: malformed action result for {key}: {exc}", reason="remote-corrupt"
            ) from None

    def update_action_result(self, key: Digest, result: ActionResult) -> None:
        path = f"/ac/{key.hash}"
        status, _ = self._request("PUT", path, result.encode())
        if status not in (200, 201, 204):
            raise self._fail("PUT", path, status)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
