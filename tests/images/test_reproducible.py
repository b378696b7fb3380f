"""Every emitter writes the same bytes whatever the TZ, umask, checkout path, clock or Python.

Each variant builds the Multiboot example with every image format through
``ukbuild build --no-cache`` (and a fresh cache), and also runs the emitter
program directly on the same staged kernel under the same conditions: the
core gives actions a fixed environment (``TZ=UTC``, no ``LD_PRELOAD``), so
only a direct run shows that the emitters themselves ignore the clock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest

from .conftest import CMDLINE, IMAGES, run_ukbuild, tree_digests, write_example

FAKETIME = ("faketime", "2030-01-01 12:00:00")
TOOLS = ("gcc", "ld", "syslinux", "xorriso")


@attrs.frozen
class Conditions:
    python: str = sys.executable
    tz: str = "UTC"
    umask: int = 0o022
    prefix: Sequence[str] = ()
    checkout: str = "a/multiboot"


def build_all(root: Path, cond: Conditions) -> dict[str, str]:
    """Build every image under ``cond``; then emit each format again directly. Digests of both."""
    project = write_example(root / cond.checkout)
    env = {"TZ": cond.tz}
    result = run_ukbuild("build", "-C", project, "--cache-dir", root / "cache", "--no-cache", "-j", "2",
                         python=cond.python, env=env, prefix=cond.prefix, umask=cond.umask)  # fmt: skip
    assert result.code == 0, result.err
    digests = {f"build/{k}": v for k, v in tree_digests(project / "out").items()}
    for _fmt, output in IMAGES.values():
        assert any(key.startswith(f"build/{output}") for key in digests), output
    stage = root / "direct"
    (stage / "kernel").mkdir(parents=True)
    shutil.copy(project / "out" / "kernel" / "hello.elf", stage / "kernel" / "hello.elf")
    for name, (fmt, output) in IMAGES.items():
        (stage / output).parent.mkdir(parents=True, exist_ok=True)
        cmdline = CMDLINE if fmt in ("raw", "iso") else "hello"
        run_emitter(stage, cond, [fmt, "--kernel", "kernel/hello.elf", "--out", output, "--cmdline", cmdline,
                                  "--name", name, "--unikernel", "hello"])  # fmt: skip
    digests.update({f"direct/{k}": v for k, v in tree_digests(stage).items() if not k.startswith("kernel/")})
    return digests


def run_emitter(cwd: Path, cond: Conditions, args: list[str]) -> None:
    env = {**os.environ, "TZ": cond.tz, "SOURCE_DATE_EPOCH": "0"}
    proc = subprocess.run(
        [*cond.prefix, cond.python, "-m", "ukbuild.emitters", *args], cwd=cwd, env=env, capture_output=True,
        text=True, check=False, preexec_fn=lambda: os.umask(cond.umask), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_all(tmp_path_factory.mktemp("baseline"), Conditions())


VARIANTS = {
    "tz": Conditions(tz="Pacific/Kiritimati"),
    "umask": Conditions(umask=0o077),
    "checkout": Conditions(checkout="a/much/longer/checkout/path/elsewhere/multiboot"),
    "faketime": Conditions(prefix=FAKETIME),
}


@pytest.mark.realtool(*TOOLS, "faketime")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_same_bytes_under(variant: str, baseline: dict[str, str], tmp_path: Path) -> None:
    """TZ, umask, checkout path and the clock change no byte of any image."""
    got = build_all(tmp_path, VARIANTS[variant])
    assert got == baseline


@pytest.mark.slow
@pytest.mark.realtool(*TOOLS)
def test_same_bytes_under_python_3_13(venv313: Path, baseline: dict[str, str], tmp_path: Path) -> None:
    """Python 3.13 writes the same bytes as 3.11 for every format (gzip headers included)."""
    got = build_all(tmp_path, Conditions(python=str(venv313 / "bin" / "python")))
    assert got == baseline
