"""Building recipes with ukbuild's API the way the tests do, and reading what ran."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from ukbuild import api
from ukbuild._project import load_project
from ukbuild.model import Project

from .conftest import RECIPES, overrides

#: What the Rumprun ELF note of a fermented program is called.
BAKE_NOTE = ".note.rumprun.bakerecipe"


def recipe(name: str, *, native: bool = False) -> Project:
    """recipes/rumprun/NAME; ``native`` builds its packages with the host toolchain (no triple)."""
    return load_project(RECIPES / name, retarget={"rumprun": "host"} if native else None)


def build(project: Project, targets: Iterable[str], out: Path, *, cache: Path, sources: Iterable[str],
          jobs: int = 2) -> api.BuildResult:
    """Build ``targets`` into ``out`` (state beside it), the named packages from Debian's sources."""
    options = api.BuildOptions(out_dir=out, cache_dir=cache, jobs=jobs, overrides=overrides(*sources),
                               state_dir=out.with_name(out.name + "-state"))
    result = api.Build(project, list(targets), options).run()
    assert result.ok, "\n".join(f"{e.message}\n{e.detail or ''}" for e in result.errors)
    return result


def log(result: api.BuildResult, action: str) -> str:
    """The log of an action that ran in this build: its steps, echoed, and their output."""
    return (result.out_dir.with_name(result.out_dir.name + "-state") / "logs" / f"{action}.log").read_text(errors="replace")


def statuses(result: api.BuildResult) -> Mapping[str, str]:
    return {name: o.status for name, o in result.outcomes.items()}


def sections(path: Path) -> str:
    return subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True, check=True).stdout


def elf_type(path: Path) -> str:
    return subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
