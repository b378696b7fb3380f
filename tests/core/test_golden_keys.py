"""Golden keys: the exact key of each kind of action, from a fixed project and toolchain.

A failure here means keys changed. That is only right together with a bump
of KEY_VERSION (or the step's version), because every cached result of every
user becomes unreachable; then update the expected values below.
"""

from __future__ import annotations

import threading
from pathlib import Path

import attrs

from ukbuild._journal import FileDigests, KeyHistory
from ukbuild._reapi import ActionResult, Digest, OutputFile
from ukbuild._scheduler import Scheduler
from ukbuild._store import Store
from ukbuild.api import load_project
from ukbuild.keys import digest_of
from ukbuild.model import Platform, Tool, Toolchain

PROJECT = Path(__file__).parent / "data" / "golden"
TOOLCHAIN = Toolchain(
    name="host",
    tools=[Tool("cc", "/usr/bin/cc", "cc (Golden) 1.0", "sha256:" + "c" * 64 + "/100"),
           Tool("sh", "/bin/sh", "sh 1", "sha256:" + "5" * 64 + "/10")],
    search_path=["/usr/bin"],
)
EXPECTED = {
    "compile[main]": "sha256:efa7a000375c106e8a485419499b09d25ab7366e054fd4562ecbaed556389713/699",
    "link": "sha256:55e88fbb38e1ea7ab45c5264acfabd156ec973bc2c10167957aefe5a7c5ae11e/680",
    "lib": "sha256:fd0042c01a50c422fb986ad23e0780dcdfc63e199c8f6d716660b977b9679c55/1128",
}


def test_golden_keys(tmp_path: Path) -> None:
    project = attrs.evolve(load_project(PROJECT), platform=Platform("x86_64-linux-gnu", "x86_64-linux-gnu", "x86_64-linux-gnu"))
    scheduler = Scheduler(
        project, Store(tmp_path / "cache"), None, {"host": TOOLCHAIN}, FileDigests({}), KeyHistory({}),  # type: ignore[arg-type]
        lambda *a, **k: None, jobs=1, keep_going=False, cancel=threading.Event(), overrides={},
    )
    compile_result = ActionResult((OutputFile("obj/main.o", Digest("0" * 64, 1234)),))
    keys = {
        "compile[main]": digest_of(scheduler.key_document(project.actions["compile[main]"], {})),
        "link": digest_of(scheduler.key_document(project.actions["link"], {"compile[main]": compile_result})),
        "lib": digest_of(scheduler.key_document(project.actions["lib"], {})),
    }
    assert {name: str(key) for name, key in keys.items()} == EXPECTED
