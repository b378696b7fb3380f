"""ukbuild embedded in another program: two concurrent builds and a cancellation, from outside."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_another_program_runs_two_builds_and_cancels_a_third(tmp_path: Path) -> None:
    project = tmp_path / "hello-c"
    shutil.copytree(REPO / "examples" / "hello-c", project, ignore=shutil.ignore_patterns("out"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "embed" / "embed.py"), str(project), str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {d["build"]: d for d in map(json.loads, proc.stdout.splitlines())}
    assert lines["a"]["ok"] and lines["b"]["ok"] and lines["a"]["outputs"] == lines["b"]["outputs"]
    assert lines["c"] == {"build": "c", "cancelled": True, "reason": "cancelled"}
    assert "Traceback" not in proc.stderr
