"""Remote caches: a bazel-remote style HTTP cache and REAPI over gRPC, behind one policy.

::

    tier = open_remote(RemoteConfig.from_mapping({"url": "grpc://cache:8980", "push": True}),
                       warn=print)
    result = tier.lookup(key, store)          # None on a miss or any remote trouble
    tier.publish(key, result, store)          # only with push, only successful results

:class:`RemoteCache` is the transport interface (two implementations);
:class:`RemoteTier` adds the policy a build needs (see :mod:`.policy`).
"""

from __future__ import annotations

from collections.abc import Callable

from ._base import Blob, CorruptBlob, RemoteCache, RemoteError
from .config import RemoteConfig
from .policy import RemoteTier, TierStats

__all__ = [
    "Blob",
    "CorruptBlob",
    "RemoteCache",
    "RemoteConfig",
    "RemoteError",
    "RemoteTier",
    "TierStats",
    "connect",
    "open_remote",
]


def connect(config: RemoteConfig) -> RemoteCache:
    """The transport for ``config.url``: HTTP(S), or gRPC (needs ``ukbuild[remote]``)."""
    if config.scheme in ("grpc", "grpcs"):
        from .reapi import GrpcCache

        return GrpcCache(config)
    from .http import HttpCache

    return HttpCache(config)


def open_remote(config: RemoteConfig, *, warn: Callable[[str], None] | None = None) -> RemoteTier:
    """A ready-to-use remote tier; connects lazily, so a dead remote does not fail here."""
    return RemoteTier(
        connect(config),
        push=config.push,
        retries=config.retries,
        cooldown=config.cooldown,
        warn=warn,
    )
