"""A REAPI v2 cache client over gRPC: Capabilities, CAS, ByteStream and ActionCache.

Needs the optional ``grpcio`` (``pip install 'ukbuild[remote]'``), imported
only here.  Messages are hand-encoded (:mod:`ukbuild.remote._wire`), so no
protobuf runtime or generated code is involved.  Small blobs move in batches
of at most the server's ``max_batch_total_size_bytes``; larger ones through
ByteStream.  Batch responses are matched by digest, never by position.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from .._reapi import ActionResult, Digest
from .._store import Store
from ..errors import ConfigError, StoreError
from . import _wire
from ._base import EMPTY, Blob, RemoteCache, RemoteError, Sink, corrupt, store_bytes
from .config import RemoteConfig

try:
    import grpc
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigError(
        "a grpc:// remote needs grpcio",
        hint="pip install 'ukbuild[remote]'",
        reason="missing-extra",
    ) from exc

CAS = "/build.bazel.remote.execution.v2.ContentAddressableStorage/"
AC = "/build.bazel.remote.execution.v2.ActionCache/"
CAPABILITIES = "/build.bazel.remote.execution.v2.Capabilities/GetCapabilities"
BYTESTREAM = "/google.bytestream.ByteStream/"
CHUNK = 1 << 20
#: Batch limit when the server does not state one (REAPI's recommended 4 MiB, less framing).
DEFAULT_BATCH = 4 * 1024 * 1024 - 64 * 1024
#: Per-blob framing allowance inside a batch (digest, field headers).
BATCH_OVERHEAD = 100
#: Slowest transfer rate tolerated before a large read or write times out.
MIN_RATE = 1 << 20
RETRYABLE = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"})


def _identity(data: bytes) -> bytes:
    return data


class GrpcCache(RemoteCache):
    def __init__(self, config: RemoteConfig) -> None:
        self.name = config.url + (f" (instance {config.instance!r})" if config.instance else "")
        self.instance = config.instance
        self._timeout = config.timeout
        target = config.url.split("://", 1)[1].rstrip("/")
        options = [
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
        ]
        if config.scheme == "grpcs":
            root = Path(config.ca_file).read_bytes() if config.ca_file else None
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root), options)
        else:
            self._channel = grpc.insecure_channel(target, options)
        self._metadata: tuple[tuple[str, str], ...] = ()
        if config.username is not None:
            token = base64.b64encode(f"{config.username}:{config.password or ''}".encode()).decode()
            self._metadata = (("authorization", "Basic " + token),)
        self._batch_limit: int | None = None

    # --- transport ------------------------------------------------------------

    def _unary(self, method: str, request: bytes, *, timeout: float | None = None) -> bytes | None:
        """Call one unary method; ``None`` for NOT_FOUND, ``RemoteError`` for other failures."""
        call = self._channel.unary_unary(method, _identity, _identity)
        try:
            return call(request, timeout=timeout or self._timeout, metadata=self._metadata)  # type: ignore[no-any-return]
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self._error(method, exc) from None

    def _error(self, method: str, exc: Any) -> RemoteError:
        code = exc.code()
        name = code.name if code is not None else "UNKNOWN"
        rpc = method.rsplit("/", 1)[-1]
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return RemoteError(f"{self.name}: {rpc}: no answer in time")
        details = (exc.details() or "").splitlines()[0:1]
        return RemoteError(
            f"{self.name}: {rpc} failed: {name}" + (f": {details[0]}" if details else ""),
            retryable=name in RETRYABLE,
        )

    def call(self, method: str, request: bytes, *, timeout: float | None = None) -> bytes | None:
        """One unary call to any service on this channel; ``None`` for NOT_FOUND."""
        return self._unary(method, request, timeout=timeout)

    def call_until(self, method: str, request: bytes, stop: Any, *, timeout: float) -> bytes | None:
        """:meth:`call`, abandoned (``RemoteError``) as soon as the ``stop`` event is set."""
        future = self._channel.unary_unary(method, _identity, _identity).future(
            request, timeout=timeout, metadata=self._metadata
        )
        while not stop.wait(0.05):
            if future.done():
                break
        else:
            future.cancel()
            raise RemoteError(f"{self.name}: {method.rsplit('/', 1)[-1]}: abandoned")
        try:
            return future.result()  # type: ignore[no-any-return]
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self._error(method, exc) from None

    def open_stream(self, method: str, request: bytes) -> Any:
        """A server-streaming call with no deadline: iterate it; ``cancel()`` stops it."""
        call = self._channel.unary_stream(method, _identity, _identity)
        return call(request, metadata=self._metadata)

    def rpc_error(self, method: str, exc: Any) -> RemoteError:
        """A :class:`RemoteError` for a failed call (retryable when the code says so)."""
        return self._error(method, exc)

    def _deadline(self, size: int) -> float:
        return self._timeout + size / MIN_RATE

    def batch_limit(self) -> int:
        """The most bytes one batch request may carry (asks the server once)."""
        if self._batch_limit is None:
            stated = self.capabilities().max_batch_total_size
            self._batch_limit = min(stated, DEFAULT_BATCH) if stated else DEFAULT_BATCH
        return self._batch_limit

    def capabilities(self) -> _wire.Capabilities:
        data = self._unary(CAPABILITIES, _wire.get_capabilities_request(self.instance))
        if data is None:
            raise RemoteError(f"{self.name}: no capabilities for this instance")
        return _wire.Capabilities.decode(data)

    def _batches(self, digests: Iterable[Digest]) -> Iterator[list[Digest]]:
        limit = self.batch_limit()
        batch: list[Digest] = []
        total = 0
        for digest in digests:
            cost = digest.size + BATCH_OVERHEAD
            if batch and total + cost > limit:
                yield batch
                batch, total = [], 0
            batch.append(digest)
            total += cost
        if batch:
            yield batch

    def _small(self, digest: Digest) -> bool:
        return digest.size + BATCH_OVERHEAD <= self.batch_limit()

    def _resource(self, tail: str) -> str:
        return f"{self.instance}/{tail}" if self.instance else tail

    # --- RemoteCache ------------------------------------------------------------

    def find_missing(self, digests: Collection[Digest]) -> set[Digest]:
        wanted = sorted({d for d in digests if d != EMPTY})
        missing: set[Digest] = set()
        for start in range(0, len(wanted), 10_000):
            request = _wire.find_missing_request(self.instance, wanted[start : start + 10_000])
            data = self._unary(CAS + "FindMissingBlobs", request)
            if data is None:
                raise RemoteError(f"{self.name}: FindMissingBlobs: instance not found")
            missing.update(_wire.find_missing_response(data))
        return missing

    def upload_blobs(self, blobs: Collection[Blob]) -> None:
        by_digest = {b.digest: b for b in blobs if b.digest != EMPTY}
        small = [d for d in sorted(by_digest) if self._small(d)]
        for batch in self._batches(small):
            request = _wire.batch_update_request(
                self.instance, ((d, by_digest[d].read()) for d in batch)
            )
            size = sum(d.size for d in batch)
            data = self._unary(CAS + "BatchUpdateBlobs", request, timeout=self._deadline(size))
            answered = dict(_wire.batch_update_response(data or b""))
            failed = [
                f"{d}: {answered[d].message or answered[d].code}"
                for d in batch
                if d in answered and answered[d].code != 0
            ]
            unanswered = [str(d) for d in batch if d not in answered]
            if failed or unanswered:
                problems = failed + [f"{d}: no answer" for d in unanswered]
                raise RemoteError(f"{self.name}: BatchUpdateBlobs: {'; '.join(problems[:3])}")
        for digest in sorted(set(by_digest) - set(small)):
            self._write(by_digest[digest])

    def _write(self, blob: Blob) -> None:
        digest = blob.digest
        resource = self._resource(f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}")

        def requests() -> Iterator[bytes]:
            offset = 0
            for chunk in blob.chunks(CHUNK):
                end = offset + len(chunk)
                yield _wire.write_request(
                    resource if offset == 0 else "", offset, chunk, finish=end == digest.size
                )
                offset = end

        call = self._channel.stream_unary(BYTESTREAM + "Write", _identity, _identity)
        try:
            response = call(
                requests(), timeout=self._deadline(digest.size), metadata=self._metadata
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return
            raise self._error(BYTESTREAM + "Write", exc) from None
        committed = _wire.write_response(response)
        if committed != digest.size:
            raise RemoteError(
                f"{self.name}: ByteStream.Write of {digest} committed {committed} bytes"
            )

    def download_blobs(self, digests: Collection[Digest], store: Store) -> set[Digest]:
        wanted = sorted(set(digests))
        missing: set[Digest] = set()
        bad: list[Digest] = []
        if EMPTY in wanted:
            store.put_bytes(b"")
        small = [d for d in wanted if d != EMPTY and self._small(d)]
        for batch in self._batches(small):
            request = _wire.batch_read_request(self.instance, batch)
            size = sum(d.size for d in batch)
            data = self._unary(CAS + "BatchReadBlobs", request, timeout=self._deadline(size))
            answered = {
                d: (blob, status) for d, blob, status in _wire.batch_read_response(data or b"")
            }
            for digest in batch:
                if digest not in answered:
                    raise RemoteError(f"{self.name}: BatchReadBlobs did not answer for {digest}")
                blob, status = answered[digest]
                if status.code == grpc.StatusCode.NOT_FOUND.value[0]:
                    missing.add(digest)
                elif status.code != 0:
                    raise RemoteError(
                        f"{self.name}: BatchReadBlobs: {digest}: {status.message or status.code}"
                    )
                elif not store_bytes(store, digest, blob):
                    bad.append(digest)
        for digest in wanted:
            if digest != EMPTY and not self._small(digest):
                outcome = self._read(digest, store)
                if outcome == "missing":
                    missing.add(digest)
                elif outcome == "corrupt":
                    bad.append(digest)
        if bad:
            raise corrupt(self.name, bad)
        return missing

    def _read(self, digest: Digest, store: Store) -> str:
        resource = self._resource(f"blobs/{digest.hash}/{digest.size}")
        call = self._channel.unary_stream(BYTESTREAM + "Read", _identity, _identity)
        sink = Sink(store, digest)
        try:
            for response in call(
                _wire.read_request(resource),
                timeout=self._deadline(digest.size),
                metadata=self._metadata,
            ):
                sink.write(_wire.read_response(response))
            return "ok" if sink.commit() else "corrupt"
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return "missing"
            raise self._error(BYTESTREAM + "Read", exc) from None
        finally:
            sink.discard()

    def get_action_result(self, key: Digest) -> ActionResult | None:
        data = self._unary(
            AC + "GetActionResult", _wire.get_action_result_request(self.instance, key)
        )
        if data is None:
            return None
        try:
            return _wire.action_result(data)
        except (StoreError, ValueError) as exc:
            raise RemoteError(
                f"{self.name}: malformed action result for {key}: {exc}", reason="remote-corrupt"
            ) from None

    def update_action_result(self, key: Digest, result: ActionResult) -> None:
        request = _wire.update_action_result_request(self.instance, key, result)
        if self._unary(AC + "UpdateActionResult", request) is None:
            raise RemoteError(f"{self.name}: UpdateActionResult: instance not found")

    def close(self) -> None:
        self._channel.close()
