"""Steps marked ``network = true``: keyed like any other, cached, and refused by --offline unless cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from ukbuild import api

PROJECT = """\
[project]
name = "p"
default = ["use"]

[toolchain.host]
tools = ["sh", "cat"]

[action.fetch]
command = ["sh", "-c", "echo fetched > lock.txt"]
outputs = ["lock.txt"]
network = true

[action.use]
command = ["sh", "-c", "cat lock.txt > used.txt"]
deps = ["fetch"]
outputs = ["used.txt"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "ukbuild.toml").write_text(PROJECT)
    return root


def test_marked_step_is_loaded_and_keyed(project: Path) -> None:
    actions = api.load_project(project).actions
    assert actions["fetch"].network and not actions["use"].network


def test_offline_refuses_a_fetching_step_until_it_is_cached(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    refused = ukbuild("build", "-C", project, "--cache-dir", cache, "--offline")
    assert refused.code == 1
    assert "fetch: needs the network to run, and the build is offline" in refused.err
    assert "hint: build once with the network" in refused.err
    assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    fresh = ukbuild("build", "-C", project, "--cache-dir", cache, "--offline", "-o", tmp_path / "out2", "--json")
    assert fresh.code == 0, fresh.err
    assert sorted(fresh.cached()) == ["fetch", "use"]


def test_bad_network_value(project: Path) -> None:
    (project / "ukbuild.toml").write_text(PROJECT.replace("network = true", 'network = "yes"'))
    result = ukbuild("build", "-C", project)
    assert result.code == 2
    assert "ukbuild.toml:11: action.fetch.network: expected a boolean, got a string" in result.err
