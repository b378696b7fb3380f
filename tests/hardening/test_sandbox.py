"""The bubblewrap sandbox: no network, no writes outside the scratch dir, /ukbuild/work as cwd."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ukbuild._sandbox import bwrap_available, wrap
from ukbuild.model import LOGICAL_WORKDIR

pytestmark = pytest.mark.realtool("bwrap")

CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)"


@pytest.fixture(scope="module")
def sandbox() -> None:
    if not bwrap_available():
        pytest.skip("bwrap is installed but cannot create namespaces here")


@pytest.fixture
def listening() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (from the host's network namespace)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def run(argv: list[str], work: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(wrap(argv, work, **kw), capture_output=True, text=True, timeout=30, check=False)  # type: ignore[arg-type]


def test_probe_is_cached(sandbox: None) -> None:
    assert bwrap_available() is bwrap_available() is True
    assert bwrap_available.cache_info().hits >= 1


def test_no_network(sandbox: None, work: Path, listening: int) -> None:
    """A port the host reaches on 127.0.0.1 is unreachable from inside."""
    outside = subprocess.run([sys.executable, "-c", CONNECT, str(listening)], capture_output=True, text=True, check=False)
    assert outside.returncode == 0, outside.stderr
    # The interpreter stays visible if its venv lives under /tmp (the sandbox's /tmp is private).
    inside = run([sys.executable, "-c", CONNECT, str(listening)], work, readonly=[Path(sys.prefix)])
    assert inside.returncode != 0
    assert "ConnectionRefusedError" in inside.stderr or "OSError" in inside.stderr


def test_network_action_keeps_the_host_network(sandbox: None, work: Path, listening: int) -> None:
    """An action marked ``network`` (a package manager's fetch) reaches what the host reaches,
    and still writes only its scratch dir."""
    inside = run([sys.executable, "-c", CONNECT, str(listening)], work, readonly=[Path(sys.prefix)], network=True)
    assert inside.returncode == 0, inside.stderr
    assert run(["sh", "-c", "! touch /new-root-file 2>/dev/null"], work, network=True).returncode == 0


def test_writes_only_in_the_scratch_dir(sandbox: None, work: Path, tmp_path: Path) -> None:
    """The scratch dir is writable (at /ukbuild/work); the host, including the scratch dir's
    own host path and its parent, and the sandbox root are not; /tmp is private."""
    outside, private = tmp_path / "outside", f"/tmp/ukbuild-sandbox-{tmp_path.name}"
    script = (
        "echo ok > made.txt && "
        f"! touch {outside} 2>/dev/null && ! touch {work}/via-host-path 2>/dev/null && "
        "! touch /new-root-file 2>/dev/null && ! mkdir /ukbuild/other 2>/dev/null && "
        f"echo private > {private} && cat {private}"
    )
    result = run(["sh", "-c", script], work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "private\n"
    assert (work / "made.txt").read_text() == "ok\n"
    assert not outside.exists() and not (work / "via-host-path").exists()
    assert not Path(private).exists()


def test_cwd_is_the_logical_workdir(sandbox: None, work: Path) -> None:
    (work / "sub").mkdir()
    assert run(["pwd"], work).stdout == f"{LOGICAL_WORKDIR}\n"
    assert run(["pwd"], work, workdir="sub").stdout == f"{LOGICAL_WORKDIR}/sub\n"


def test_extra_writable_paths(sandbox: None, work: Path, tmp_path: Path) -> None:
    """A path passed as writable (the action's HOME) is writable at its own path."""
    home = tmp_path / "home"
    home.mkdir()
    result = run(["sh", "-c", f"echo h > {home}/f"], work, writable=[home])
    assert result.returncode == 0, result.stderr
    assert (home / "f").read_text() == "h\n"


def test_failing_command_status_passes_through(sandbox: None, work: Path) -> None:
    assert run(["sh", "-c", "exit 7"], work).returncode == 7
