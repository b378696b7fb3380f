"""Fixtures for the Multiboot backend: the hello kernel built with the host gcc and ld."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BACKEND_DIR = Path(__file__).resolve().parents[1]
HELLO_C = BACKEND_DIR.parents[1] / "examples" / "multiboot" / "hello.c"

if importlib.util.find_spec("ukbuild_multiboot") is None:  # not installed yet: use the checkout
    sys.path.insert(0, str(BACKEND_DIR))

from ukbuild_multiboot.compile import VARIANTS, Variant, kernel_commands  # noqa: E402


def build_hello(variant: Variant, outdir: Path) -> Path:
    """Compile and link examples/multiboot/hello.c for ``variant`` into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    commands = kernel_commands(variant, (HELLO_C,), outdir, outdir / f"hello-{variant}.elf")
    for argv in (*commands.compile, commands.link):
        subprocess.run(argv, check=True, capture_output=True, text=True)
    return Path(commands.output)


@pytest.fixture(scope="session")
def hello_builder() -> Callable[[Variant, Path], Path]:
    """build_hello(), for tests that build their own copies."""
    return build_hello


@pytest.fixture(scope="session")
def hello_kernels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both variants of the hello kernel, built once per session."""
    outdir = tmp_path_factory.mktemp("kernels")
    return {variant: build_hello(variant, outdir / variant) for variant in VARIANTS}
