"""Keys are the same under every supported Python: 3.11 here, 3.13 from pyenv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.helpers import EXAMPLE, REPO

RUNTIME_DEPS = ["attrs", "pluggy", "zstandard", "rich"]


def python313() -> str | None:
    try:
        prefix = subprocess.run(["pyenv", "prefix", "3.13.0"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    exe = Path(prefix) / "bin" / "python3.13"
    return str(exe) if exe.is_file() else None


@pytest.fixture(scope="session")
def venv313(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = python313()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Python 3.13 from pyenv (pyenv install 3.13.0)")
        pytest.skip("Python 3.13 is not installed (pyenv prefix 3.13.0)")
    venv = tmp_path_factory.mktemp("py313") / "venv"
    subprocess.run([exe, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *RUNTIME_DEPS], check=True, capture_output=True)
    return venv


def keys(python: str, project: Path, cache: Path) -> dict[str, str]:
    proc = subprocess.run(
        [python, "-m", "ukbuild", "build", "-C", str(project), "--cache-dir", str(cache), "--json", "-j", "2"],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return {e["action"]: e["key"] for e in events if e["event"] in ("action-finished", "action-cached")}


def test_same_keys_and_outputs_under_python_3_11_and_3_13(venv313: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "hello-c", tmp_path / "b" / "hello-c"
    for dest in (a, b):
        shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("out"))
    with_311 = keys(sys.executable, a, tmp_path / "cache311")
    with_313 = keys(str(venv313 / "bin" / "python"), b, tmp_path / "cache313")
    assert with_311 == with_313 and len(with_311) == 6
    assert (a / "out" / "dist" / "hello.tar.gz").read_bytes() == (b / "out" / "dist" / "hello.tar.gz").read_bytes()
