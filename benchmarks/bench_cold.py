"""Cold build of ``examples/hello-c`` vs the same commands in a shell script: per-action overhead.

The example has six actions (three ``cc -O2 -g`` compiles, ``ar``, the
link, and a ``tar | gzip -n`` package).  Each timed ukbuild run starts
with an empty cache and an empty output dir (``--cache-dir`` and ``-o``
in a fresh temp dir), so it pays for everything a first build does:
start-up, loading the project, finding and fingerprinting the five tools
(``--version`` and a digest of each binary), staging inputs into a
scratch dir per action, storing outputs, writing them out and recording
the no-op state.  ``-j1``, as the script runs the commands one after
another.  The figure reported is the overhead per action:
(ukbuild's time − the script's) / 6.  Target: ukbuild <= 1.5x the script.
"""

from __future__ import annotations

import shutil

from _common import REPO, UKBUILD, Row, alternate, say, timed, ukbuild_env, workspace

REPS = 7
TARGET = 1.5
ACTIONS = 6
SCRIPT = """\
set -e
mkdir -p obj lib bin dist
for stem in greet main util; do
  cc -O2 -g -Wall -Iinclude -c src/$stem.c -o obj/$stem.o
done
ar rcD lib/libgreet.a obj/greet.o obj/util.o
cc -o bin/hello obj/main.o lib/libgreet.a
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - bin/hello | gzip -n9 > dist/hello.tar.gz
"""


def bench(quick: bool) -> list[Row]:
    with workspace("cold") as root:
        proj = root / "hello-c"
        shutil.copytree(REPO / "examples" / "hello-c", proj, ignore=shutil.ignore_patterns("out"))
        (proj / "build.sh").write_text(SCRIPT)
        env = ukbuild_env(root)
        build = [str(UKBUILD), "build", "-C", str(proj), "-o", str(root / "out"), "--cache-dir", str(root / "cache"),
                 "-j1"]

        def fresh() -> None:
            for built in ("out", "cache"):
                shutil.rmtree(root / built, ignore_errors=True)
            for built in ("obj", "lib", "bin", "dist"):
                shutil.rmtree(proj / built, ignore_errors=True)
            shutil.rmtree(root / "tmp", ignore_errors=True)
            (root / "tmp").mkdir()

        def ukbuild() -> float:
            return timed(build, env=env, check=lambda out: "dist/hello.tar.gz" in out)

        def script() -> float:
            return timed(["sh", "build.sh"], cwd=proj)

        alternate(1, ukbuild, script, before=fresh)  # warm-up: page cache, compiler
        ukb, sh = alternate(3 if quick else REPS, ukbuild, script, before=fresh)
    overhead = (ukb - sh) / ACTIONS
    say(f"cold: hello-c ukbuild -j1 {ukb * 1e3:.0f} ms, sh {sh * 1e3:.0f} ms: +{overhead * 1e3:.0f} ms per action")
    return [
        Row(f"cold build, hello-c ({ACTIONS} actions)", f"{ukb * 1e3:.0f} ms -j1, +{overhead * 1e3:.0f} ms/action",
            f"sh {sh * 1e3:.0f} ms", ukb / sh, target=TARGET, key="cold-hello-c"),
    ]
