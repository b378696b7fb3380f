"""Helpers for the core engine's tests: the CLI in-process or as a process, tree snapshots."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import attrs

from ukbuild.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello-c"


@attrs.frozen
class CliResult:
    code: int
    out: str
    err: str

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    def executed(self) -> list[str]:
        return sorted(e["action"] for e in self.events() if e["event"] == "action-finished")

    def cached(self) -> list[str]:
        return sorted(e["action"] for e in self.events() if e["event"] == "action-cached")


def ukbuild(*args: str | os.PathLike[str]) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in args], stdout=out, stderr=err)
    return CliResult(code, out.getvalue(), err.getvalue())


def ukbuild_process(*args: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "ukbuild", *map(str, args)], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=timeout, check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file below root (outside ukbuild's own state dir), by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".ukbuild" not in p.relative_to(root).parts
    }


def cache_listing(root: Path) -> dict[str, int]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}
