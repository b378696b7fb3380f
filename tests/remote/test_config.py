"""RemoteConfig: settings from a config table and the environment, credentials kept out of sight."""

from __future__ import annotations

import pytest

from ukbuild.errors import ConfigError
from ukbuild.remote import RemoteConfig


def test_defaults_are_read_only() -> None:
    config = RemoteConfig.from_mapping({"url": "grpc://cache.example:8980"}, env={})
    assert not config.push and config.instance == "" and config.scheme == "grpc"
    assert config.username is None and config.password is None


def test_credentials_come_out_of_the_url_and_the_environment_wins() -> None:
    table = {"url": "https://me:p%40ss@cache.example/bazel", "push": True, "timeout": 3}
    config = RemoteConfig.from_mapping(table, env={})
    assert config.url == "https://cache.example/bazel"
    assert (config.username, config.password) == ("me", "p@ss")
    assert "p@ss" not in repr(config)
    env = {"UKBUILD_REMOTE_USERNAME": "ci", "UKBUILD_REMOTE_PASSWORD": "from-secret"}
    assert RemoteConfig.from_mapping(table, env=env).password == "from-secret"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "'url' is required"),
        ({"url": "ftp://x"}, "expected http"),
        ({"url": "http://x", "pushh": True}, "unknown setting 'pushh'"),
        ({"url": "http://x", "timeout": 0}, "timeout must be positive"),
    ],
)
def test_bad_settings_are_config_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RemoteConfig.from_mapping(table, env={})


def test_credentials_in_a_direct_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as caught:
        RemoteConfig("http://me:hunter2@cache")
    assert "hunter2" not in str(caught.value)
