"""How a build uses a remote cache: when to trust it, when to write to it, when to stop asking.

- Read-only unless ``push`` is set; failed results are never uploaded.
- A remote hit counts only when every blob it refers to can be had: present
  locally, or present remotely (FindMissingBlobs) and then downloaded with
  its bytes verified.  Wrong bytes are never stored.
- Every remote failure becomes a miss and a warning, after a bounded retry
  of retryable errors.  A circuit breaker then skips the remote for
  ``cooldown`` seconds, so a dead or slow remote costs one timeout per
  build, not one per action; after the cooldown one call probes it again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import attrs

from .._reapi import ActionResult, Digest
from .._store import Store
from ..errors import UkbuildError
from ._base import Blob, RemoteCache, RemoteError

T = TypeVar("T")
#: Blobs up to this size are uploaded from memory; larger ones from a temp file.
INLINE_MAX = 4 << 20
BACKOFF = 0.05


class _Unavailable(Exception):
    """The remote cannot be used for this operation (already warned about)."""


@attrs.frozen
class TierStats:
    """What the remote tier did in this build so far."""

    hits: int = 0
    misses: int = 0
    failures: int = 0
    pushed: int = 0
    blobs_down: int = 0
    bytes_down: int = 0
    blobs_up: int = 0
    bytes_up: int = 0


class RemoteTier:
    """A :class:`RemoteCache` behind the trust, failure and push policy the scheduler needs."""

    def __init__(
        self,
        cache: RemoteCache,
        *,
        push: bool = False,
        retries: int = 2,
        cooldown: float = 60.0,
        warn: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.push = push
        self.retries = retries
        self.cooldown = cooldown
        self._warn = warn or (lambda _msg: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._probing = False
        self._stats = TierStats()

    # --- breaker -----------------------------------------------------------------

    def _allowed(self) -> bool:
        with self._lock:
            if self._open_until is None:
                return True
            if self._probing or self._clock() < self._open_until:
                return False
            self._probing = True
            return True

    def _succeeded(self) -> None:
        with self._lock:
            if self._open_until is not None:
                self._warn(f"remote cache {self.cache.name} is answering again")
            self._open_until = None
            self._probing = False

    def _failed(self, exc: RemoteError) -> None:
        with self._lock:
            first = self._open_until is None
            self._open_until = self._clock() + self.cooldown
            self._probing = False
            self._count(failures=1)
        if first:
            self._warn(f"{exc.message}; building without the remote cache for {self.cooldown:g} s")

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one remote operation under the policy; ``_Unavailable`` when it cannot be used."""
        if not self._allowed():
            raise _Unavailable
        for attempt in range(self.retries + 1):
            try:
                value = fn()
            except RemoteError as exc:
                if exc.reason == "remote-corrupt":
                    self._succeeded()  # it answered; the answer was wrong
                    self._warn(exc.message)
                    raise _Unavailable from None
                if exc.retryable and attempt < self.retries:
                    time.sleep(BACKOFF * 2**attempt)
                    continue
                self._failed(exc)
                raise _Unavailable from None
            self._succeeded()
            return value
        raise AssertionError("unreachable")

    def _count(self, **delta: int) -> None:
        self._stats = attrs.evolve(
            self._stats, **{k: getattr(self._stats, k) + v for k, v in delta.items()}
        )

    @property
    def available(self) -> bool:
        """False while the breaker skips the remote."""
        with self._lock:
            return self._open_until is None

    def stats(self) -> TierStats:
        with self._lock:
            return self._stats

    # --- reading -------------------------------------------------------------------

    def lookup(self, key: Digest, store: Store) -> ActionResult | None:
        """The remote result for ``key`` with all its blobs now in ``store``, or ``None``.

        A hit is also recorded in the local action cache.  Never raises for
        remote or local-store trouble: that is a miss (and a warning).
        """
        try:
            result = self._restore(key, store)
        except _Unavailable:
            result = None
        except (UkbuildError, OSError) as exc:
            self._warn(f"remote cache {self.cache.name}: could not restore {key}: {exc}")
            result = None
        with self._lock:
            self._count(**({"hits": 1} if result is not None else {"misses": 1}))
        return result

    def _restore(self, key: Digest, store: Store) -> ActionResult | None:
        result = self._call(lambda: self.cache.get_action_result(key))
        if result is None or result.exit_code != 0:
            return None
        trees = [d.tree_digest for d in result.output_directories]
        if not self._fetch([t for t in trees if not store.has(t)], store):
            return None
        blobs = set(result.blobs())
        for digest in trees:
            tree = store.read_tree(digest)
            if tree is None:
                return None
            for directory in (tree.root, *tree.children):
                blobs.update(f.digest for f in directory.files)
        if not self._fetch([d for d in blobs if not store.has(d)], store):
            return None
        store.put_action_result(key, result)
        return result

    def _fetch(self, needed: list[Digest], store: Store) -> bool:
        """Download ``needed`` if the remote has every one of them (validated first)."""
        if not needed:
            return True
        if self._call(lambda: self.cache.find_missing(needed)):
            return False
        if self._call(lambda: self.cache.download_blobs(needed, store)):
            return False
        with self._lock:
            self._count(blobs_down=len(needed), bytes_down=sum(d.size for d in needed))
        return True

    # --- writing ----------------------------------------------------------------------

    def publish(self, key: Digest, result: ActionResult, store: Store) -> bool:
        """Upload a successful result and its blobs (when pushing is enabled); True if done.

        Blobs go first, the action-cache entry last, so the remote never
        holds an entry whose blobs are missing.  The key document stays
        local: REAPI servers read the CAS blob named by an action-cache key
        as an ``Action`` message (BuildGrid fails GetActionResult otherwise).
        """
        if not self.push or result.exit_code != 0:
            return False
        try:
            blobs = self._closure(result, store)
            if blobs is None:
                self._warn(
                    f"remote cache {self.cache.name}: not pushing {key}: a local blob is missing"
                )
                return False
            missing = self._call(lambda: self.cache.find_missing(blobs))
            with _readable(store, missing) as upload:
                if upload is None:
                    return False
                self._call(lambda: self.cache.upload_blobs(upload))
            self._call(lambda: self.cache.update_action_result(key, result))
        except _Unavailable:
            return False
        except (UkbuildError, OSError) as exc:
            self._warn(f"remote cache {self.cache.name}: could not push {key}: {exc}")
            return False
        with self._lock:
            self._count(pushed=1, blobs_up=len(missing), bytes_up=sum(d.size for d in missing))
        return True

    def _closure(self, result: ActionResult, store: Store) -> set[Digest] | None:
        blobs = set(result.blobs())
        for d in result.output_directories:
            tree = store.read_tree(d.tree_digest)
            if tree is None:
                return None
            for directory in (tree.root, *tree.children):
                blobs.update(f.digest for f in directory.files)
        return blobs

    def close(self) -> None:
        self.cache.close()


@contextlib.contextmanager
def _readable(store: Store, digests: set[Digest]) -> Iterator[list[Blob] | None]:
    """The blobs as uploadable values (large ones exported to temp files), or ``None``."""
    blobs: list[Blob] = []
    temps: list[Path] = []
    try:
        for digest in sorted(digests):
            if digest.size <= INLINE_MAX:
                data = store.read_bytes(digest)
                if data is None:
                    yield None
                    return
                blobs.append(Blob(digest, data=data))
                continue
            fd, name = tempfile.mkstemp(dir=store.scratch_dir(), prefix="u-")
            os.close(fd)
            os.unlink(name)
            temps.append(Path(name))
            if not store.export(digest, Path(name)):
                yield None
                return
            blobs.append(Blob(digest, path=Path(name)))
        yield blobs
    finally:
        for path in temps:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
