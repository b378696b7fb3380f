"""Where the remote cache is and how to use it: a frozen value built from config and env."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping

import attrs

from ..errors import ConfigError

SCHEMES = ("http", "https", "grpc", "grpcs")
ENV_USERNAME = "UKBUILD_REMOTE_USERNAME"
ENV_PASSWORD = "UKBUILD_REMOTE_PASSWORD"


@attrs.frozen
class RemoteConfig:
    """One remote cache.

    ``url`` is ``http(s)://host[:port][/prefix]`` for a bazel-remote style
    HTTP cache or ``grpc(s)://host:port`` for a REAPI server; it never holds
    credentials (:meth:`from_mapping` moves ``user:password@`` out of it).
    ``push`` enables uploads (off by default: developers read, CI writes).
    """

    url: str
    instance: str = ""
    push: bool = False
    timeout: float = 10.0
    retries: int = 2
    cooldown: float = 60.0
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    ca_file: str | None = None

    def __attrs_post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ConfigError(
                f"remote url {_redact(self.url)!r}: expected http(s)://HOST[:PORT][/PATH] "
                "or grpc(s)://HOST:PORT"
            )
        if parts.username or parts.password:
            raise ConfigError(
                "remote url: credentials belong in username/password or the environment"
            )
        if self.timeout <= 0 or self.retries < 0:
            raise ConfigError("remote: timeout must be positive and retries not negative")

    @property
    def scheme(self) -> str:
        return urllib.parse.urlsplit(self.url).scheme

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, object], env: Mapping[str, str] | None = None
    ) -> RemoteConfig:
        """Build from a config table (``url``, ``instance``, ``push``, ``timeout``, …).

        Credentials come from the table, from ``user:password@`` in the URL,
        or from ``UKBUILD_REMOTE_USERNAME``/``UKBUILD_REMOTE_PASSWORD`` (the
        environment wins, so CI secrets never need to be written to a file).
        """
        env = os.environ if env is None else env
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"remote: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        fields = dict(values)
        url = fields.get("url")
        if not isinstance(url, str):
            raise ConfigError("remote: 'url' is required")
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None:
            fields.setdefault("username", urllib.parse.unquote(parts.username))
            if parts.password is not None:
                fields.setdefault("password", urllib.parse.unquote(parts.password))
            host = parts.netloc.rpartition("@")[2]
            fields["url"] = urllib.parse.urlunsplit(parts._replace(netloc=host))
        if env.get(ENV_USERNAME):
            fields["username"] = env[ENV_USERNAME]
        if env.get(ENV_PASSWORD):
            fields["password"] = env[ENV_PASSWORD]
        try:
            return cls(**fields)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(f"remote: {exc}") from None


def _redact(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
