"""Fixtures for image tests through the real ``ukbuild build``: the Multiboot example with
every image format, a runner for the CLI as a process, and a Python 3.13 venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "multiboot"
FAKE_BACKEND = Path(__file__).resolve().parent / "fakebackend"

# Over 1 KiB of JSON with commas, quotes, spaces, backslashes, '#', '=' and UTF-8.
CMDLINE = json.dumps(
    {
        "cmdline": 'hello.bin "quoted arg" a,b,c x=y#z',
        "env": [f'VAR{i}=value, with spaces and a "quote" #{i}' for i in range(20)],
        "path": "C:\\dir\\file",
        "utf8": "grüße ✓",
    },
    ensure_ascii=False,
)
assert len(CMDLINE.encode()) >= 1024

#: Every format, with the output it writes (relative to the out dir).
IMAGES = {
    "hello-disk": ("raw", "image/hello-disk.img"),
    "hello-iso": ("iso", "image/hello-iso.iso"),
    "hello-oci": ("oci", "oci/hello-oci"),
    "hello-ocitar": ("oci-archive", "image/hello-ocitar.oci.tar"),
    "hello-docker": ("docker-archive", "image/hello-docker.docker.tar"),
}


def toml_string(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def write_example(dest: Path, extra: str = "") -> Path:
    """The Multiboot example at ``dest`` with one image of every format and the long command line."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("out"))
    text = (dest / "ukbuild.toml").read_text()
    text = text.split("# The same kernel as")[0]
    text = text.replace('default = ["hello", "hello-disk", "hello-iso", "hello-oci"]', "default = []")
    for name, (fmt, _output) in IMAGES.items():
        text += f'\n[image.{name}]\nunikernel = "hello"\nformat = "{fmt}"\n'
        if fmt in ("raw", "iso"):
            text += f"cmdline = {toml_string(CMDLINE)}\n"
        if fmt == "oci":
            text += "kraftkit = true\n"
    (dest / "ukbuild.toml").write_text(text + extra)
    return dest


@attrs.frozen
class Run:
    code: int
    out: str
    err: str


def run_ukbuild(
    *args: str | os.PathLike[str],
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    umask: int | None = None,
    cwd: Path | None = None,
) -> Run:
    """``python -m ukbuild ARGS`` as a process (``prefix`` e.g. faketime), with ``env`` added."""
    environ = {**os.environ, **(env or {})}
    environ.pop("UKBUILD_CACHE_DIR", None)

    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    proc = subprocess.run(
        [*prefix, python, "-m", "ukbuild", *map(str, args)], capture_output=True, text=True, check=False,
        env=environ, preexec_fn=set_umask, cwd=cwd, timeout=600,
    )  # fmt: skip
    return Run(proc.returncode, proc.stdout, proc.stderr)


def tree_digests(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root`` (ukbuild's own state dir left out)."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".ukbuild" not in path.relative_to(root).parts
    }


@pytest.fixture
def example(tmp_path: Path) -> Callable[..., Path]:
    """``example(name, extra_toml)`` → a fresh copy of the example under ``tmp_path``."""

    def make(name: str = "multiboot", extra: str = "") -> Path:
        return write_example(tmp_path / name, extra)

    return make


@pytest.fixture(scope="session")
def venv313(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python 3.13 venv with ukbuild and the Multiboot backend installed editable.

    Skipped locally when pyenv's 3.13.0 is missing or the venv cannot be set
    up; under CI a missing 3.13 is a failure.
    """
    try:
        prefix = subprocess.run(["pyenv", "prefix", "3.13.0"], capture_output=True, text=True, check=True).stdout
        exe = Path(prefix.strip()) / "bin" / "python3.13"
    except (OSError, subprocess.CalledProcessError):
        exe = None
    if exe is None or not exe.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Python 3.13 from pyenv (pyenv install 3.13.0)")
        pytest.skip("Python 3.13 is not installed (pyenv prefix 3.13.0)")
    venv = tmp_path_factory.mktemp("py313") / "venv"
    try:
        subprocess.run([str(exe), "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "-e", str(REPO), "-e", str(REPO / "backends" / "multiboot")],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot set up the Python 3.13 venv: {exc}")
        pytest.skip(f"cannot set up the Python 3.13 venv (pip install -e needs the package index): {exc}")
    return venv
