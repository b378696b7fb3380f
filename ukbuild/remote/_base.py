"""The interface every remote cache speaks, and verified transfers into the local store."""

from __future__ import annotations

import abc
import hashlib
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

import attrs

from .._reapi import EMPTY_SHA256, ActionResult, Digest
from .._store import Store
from ..errors import UkbuildError

EMPTY = Digest(EMPTY_SHA256, 0)


class RemoteError(UkbuildError):
    """The remote could not answer: unreachable, timed out, refused, or failing.

    ``retryable`` marks failures worth one more try (a reset connection, a
    5xx, gRPC UNAVAILABLE); a timeout is not retried, it already cost its time.
    Messages name the remote by its display URL, never with credentials.
    """

    default_reason = "remote-error"

    def __init__(self, message: str, *, retryable: bool = False, reason: str | None = None) -> None:
        super().__init__(message, reason=reason, temporary=True)
        self.retryable = retryable


class CorruptBlob(RemoteError):
    """The remote sent bytes that do not match the digest asked for; none were stored."""

    default_reason = "remote-corrupt"


@attrs.frozen
class Blob:
    """Content to upload: in memory (``data``) or in a file with exactly these bytes."""

    digest: Digest
    data: bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def chunks(self, size: int) -> Iterator[bytes]:
        if self.data is not None:
            for start in range(0, len(self.data), size):
                yield self.data[start : start + size]
            return
        assert self.path is not None
        with open(self.path, "rb") as f:
            while chunk := f.read(size):
                yield chunk


class RemoteCache(abc.ABC):
    """A remote CAS + action cache.

    Methods raise :class:`RemoteError` when the remote fails; the policy layer
    (:class:`ukbuild.remote.RemoteTier`) turns that into a miss and a warning.
    ``name`` is the remote's URL without credentials, safe for messages.
    """

    name: str

    @abc.abstractmethod
    def find_missing(self, digests: Collection[Digest]) -> set[Digest]:
        """The digests the remote does not have."""

    @abc.abstractmethod
    def upload_blobs(self, blobs: Collection[Blob]) -> None:
        """Store every blob remotely."""

    @abc.abstractmethod
    def download_blobs(self, digests: Collection[Digest], store: Store) -> set[Digest]:
        """Fetch blobs into ``store``, each verified; returns those the remote lacks.

        Raises :class:`CorruptBlob` (after storing the good ones) if any
        blob's bytes do not match its digest.
        """

    @abc.abstractmethod
    def get_action_result(self, key: Digest) -> ActionResult | None:
        """The result stored under ``key``, or ``None``."""

    @abc.abstractmethod
    def update_action_result(self, key: Digest, result: ActionResult) -> None:
        """Store ``result`` under ``key`` (its blobs must be uploaded first)."""

    def close(self) -> None:
        """Release connections."""


def store_bytes(store: Store, digest: Digest, data: bytes) -> bool:
    """Put ``data`` into the store if it matches ``digest``; False (nothing stored) if not."""
    if Digest.of(data) != digest:
        return False
    store.put_bytes(data)
    return True


class Sink:
    """Receives one blob in chunks into a temp file, and stores it only if it verifies."""

    def __init__(self, store: Store, digest: Digest) -> None:
        self.store = store
        self.digest = digest
        self._hash = hashlib.sha256()
        self._size = 0
        fd, self._tmp = tempfile.mkstemp(dir=store.scratch_dir(), prefix="r-")
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.digest.size:
            self._hash.update(chunk)
            self._file.write(chunk)

    def commit(self) -> bool:
        """Store the received blob if its size and hash match; always drops the temp file."""
        try:
            self._file.close()
            ok = self._size == self.digest.size and self._hash.hexdigest() == self.digest.hash
            if ok:
                self.store.put_file(Path(self._tmp), self.digest)
            return ok
        finally:
            self.discard()

    def discard(self) -> None:
        self._file.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def corrupt(name: str, digests: Iterable[Digest]) -> CorruptBlob:
    listed = ", ".join(str(d) for d in sorted(digests))
    return CorruptBlob(f"{name}: sent wrong bytes for {listed}; not stored")
