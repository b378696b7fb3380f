"""The web stack's acceptance line: a warm rebuild of the whole stack takes <= 2 s.

``recipes/webstack/app.toml`` as it is — its volumes (nginx's tree, the PHP
application, MariaDB's data directory bootstrapped with the host's server
tools), the launcher base layer, one launcher image per service, the compose
and Kubernetes files — with each service's recipe swapped for a Rumprun
stand-in built by the fake Rumprun toolchain of ``tests/fakes/rumprun``, as
the app tests do: the Rumprun backend's test project (an autotools library, a
program linked with it, a baked ``hw_virtio`` unikernel), one copy per
service with its own nonces, so three recipe graphs.  The real recipes cross
build nginx, PHP and MariaDB from source (an hour with the fake toolchain:
tests/recipes), which a benchmark cannot repeat cold.

After one cold ``ukbuild build APP``:

* **warm rebuild**: ``ukbuild build APP`` again, the whole CLI run (start-up
  included), with every action of every scope a cache hit and the outputs
  present; the median against the 2 s target;
* **PHP change** (informational): ``php/greeting.php`` rewritten with new
  content each time, so its volume and the php service's launcher image
  rebuild (checked: those two actions and no other); against the warm rebuild.

Needs Debian's ``mariadb-server`` (the data directory's bootstrap), ``mke2fs``
and QEMU's and busybox's files (the launcher base layer).  Standalone:
``python benchmarks/bench_app.py [--quick]`` prints the rows.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

from _common import REPO, UKBUILD, Row, run, say, timed, ukbuild_env, workspace

WEBSTACK = REPO / "recipes" / "webstack"
STAND_IN = REPO / "backends" / "rumprun" / "tests" / "project"
NONCES = {"hello-prog/hello.c": "@PROGRAM_NONCE@", "libnonce/nonce.c": "@LIBRARY_NONCE@",
          "ukbuild.toml": "@CONFIG_NONCE@"}
REPS = 9
QUICK_REPS = 3
TARGET_SECONDS = 2.0
JOBS = 2
#: What a PHP change rebuilds: the php-app volume and the php service's launcher image.
PHP_CHANGE = {("app", "php-app"), ("app", "php.launcher")}


def stand_in(dest: Path, nonce: str) -> None:
    """The Rumprun test project at ``dest``, its nonces set to ``nonce``."""
    shutil.copytree(STAND_IN, dest)
    for rel, placeholder in NONCES.items():
        path = dest / rel
        path.write_text(path.read_text().replace(placeholder, nonce))


def webstack(root: Path) -> Path:
    """The web stack's app file under ``root``, its services' recipes replaced by stand-ins."""
    app = root / "webstack"
    shutil.copytree(WEBSTACK, app, ignore=shutil.ignore_patterns("out"))
    text = (app / "app.toml").read_text()
    for recipe in re.findall(r'^recipe = "\.\./rumprun/([a-z]+)"$', text, re.M):
        stand_in(root / "stand-ins" / recipe, recipe)
    text, swapped = re.subn(r'^recipe = "\.\./rumprun/([a-z]+)"\nunikernel = "[a-z-]+"$',
                            r'recipe = "../stand-ins/\1"\nunikernel = "hello"', text, flags=re.M)
    if swapped != 3:
        raise RuntimeError(f"{WEBSTACK / 'app.toml'}: expected 3 Rumprun services, swapped {swapped}")
    (app / "app.toml").write_text(text)
    return app / "app.toml"


def executed(out: str, out_dir: Path) -> set[tuple[str, str]]:
    """(scope, action) of every action a ``--json`` app build into ``out_dir`` ran, scopes named as
    :func:`ukbuild.app.build_app` names them (``service:NAME``, ``app``); an error if a build failed."""
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finished = [e for e in events if e.get("event") == "build-finished"]
    if not finished or not all(e["ok"] for e in finished):
        raise RuntimeError(f"the app build failed:\n{out[-2000:]}")
    scope, ran = "", set()
    for e in events:
        if e["event"] == "build-started":
            scope = "app" if Path(e["out_dir"]) == out_dir else "service:" + Path(e["out_dir"]).name
        elif e["event"] == "action-finished":
            ran.add((scope, e["action"]))
    return ran


def bench(quick: bool) -> list[Row]:
    sys.path.insert(0, str(REPO))
    from tests.fakes.rumprun import install_fake_rumprun

    reps = QUICK_REPS if quick else REPS
    with workspace("app") as root:
        fake = install_fake_rumprun(root / "rumprun")
        app, out_dir = webstack(root), root / "out"
        env = {**ukbuild_env(root), "UKBUILD_RUMPRUN_PREFIX": str(fake.prefix)}
        argv = [str(UKBUILD), "build", str(app), "-o", str(out_dir), "--json", "-j", str(JOBS)]
        say(f"app: cold build ran {len(executed(run(argv, env=env), out_dir))} actions")
        warm = statistics.median(timed(argv, env=env, check=lambda out: not executed(out, out_dir))
                                 for _ in range(reps))
        page = app.parent / "php" / "greeting.php"
        original = page.read_text()

        def php_change(edit: int) -> float:
            page.write_text(original + f"<?php /* edit {edit} */ ?>\n")
            return timed(argv, env=env, check=lambda out: executed(out, out_dir) == PHP_CHANGE)

        change = statistics.median(php_change(edit) for edit in range(reps))
    say(f"app: warm rebuild {warm:.2f} s, after a PHP change {change:.2f} s (medians of {reps})")
    return [
        Row("warm rebuild, web stack app (3 services)", f"{warm:.2f} s", f"target {TARGET_SECONDS:.0f} s",
            warm / TARGET_SECONDS, target=1.0, key="app-warm"),
        Row("PHP change, web stack app", f"{change:.2f} s", f"warm rebuild {warm:.2f} s", change / warm,
            key="app-php-change"),
    ]


if __name__ == "__main__":
    from run import table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPS} repetitions instead of {REPS}")
    print(table(bench(parser.parse_args().quick)))
