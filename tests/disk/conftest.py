"""Fixtures for the disk and ISO writers: real Multiboot kernels and an awkward command line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKEND_DIR = ROOT / "backends" / "multiboot"

# Over 1 KiB, JSON with commas, double quotes, spaces, backslashes, '#', '=' and UTF-8.
CMDLINE = json.dumps(
    {
        "cmdline": 'hello.bin "quoted arg" a,b,c x=y#z',
        "env": [f'VAR{i}=value, with spaces and a "quote" #{i}' for i in range(20)],
        "blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/data"},
        "path": "C:\\dir\\file",
        "utf8": "grüße ✓",
    },
    ensure_ascii=False,
)


@pytest.fixture(scope="session")
def cmdline() -> str:
    """A JSON command line of more than 1 KiB that boot loaders tend to mangle."""
    assert len(CMDLINE) >= 1024
    return CMDLINE


@pytest.fixture(scope="session")
def hello_kernels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """examples/multiboot/hello.c built for i386 (ELF32) and x86_64 (ELF64 + a.out kludge)."""
    if importlib.util.find_spec("ukbuild_multiboot") is None:  # not installed: use the checkout
        sys.path.insert(0, str(BACKEND_DIR))
    from ukbuild_multiboot.compile import VARIANTS, kernel_commands  # noqa: PLC0415 (needs the path)

    kernels: dict[str, bytes] = {}
    for variant in VARIANTS:
        outdir = tmp_path_factory.mktemp(variant)
        hello = ROOT / "examples" / "multiboot" / "hello.c"
        commands = kernel_commands(variant, (hello,), outdir, outdir / "hello.elf")
        for argv in (*commands.compile, commands.link):
            subprocess.run(argv, check=True, capture_output=True)
        kernels[variant] = Path(commands.output).read_bytes()
    return kernels
