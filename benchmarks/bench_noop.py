"""No-op rebuild of a synthetic 10,000-action graph, ukbuild vs ninja; cold build overhead.

The graph is shaped like a C project of 99 libraries of 100 sources each:
9,900 "compile" actions (``cp`` of one 1–4 KiB source to an object), 99
"archive" actions (``cat`` of a library's 100 objects) and one "link"
(``cat`` of the 99 archives).  Every action is a default target, so all
10,000 outputs land in the output directory, as they do in ninja's build
dir; a no-op must therefore check 9,900 inputs and 10,000 outputs on both
sides.  The same sources are built by an equivalent ``build.ninja`` and by
a plain shell script (the commands alone, serially).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import time
from pathlib import Path

from _common import UKBUILD, VENV_PYTHON, Row, alternate, median_of, run, say, timed, ukbuild_env, workspace

NINJA = "/usr/bin/ninja"
SIZES = {"full": (99, 100), "quick": (19, 100)}  # (libraries, sources per library)
REPS = 15
JOBS = os.cpu_count() or 1

_BREAKDOWN = """\
import os, sys, time
t0 = time.perf_counter()
from ukbuild.cli import main
t1 = time.perf_counter()
with open(os.devnull, "w") as null:
    main(sys.argv[1:], stdout=null)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def generate(root: Path, libs: int, per_lib: int) -> int:
    """Write the ukbuild project, build.ninja and build.sh under ``root``; the action count."""
    rng = random.Random(10_000)
    proj, ninja = root / "proj", root / "ninja"
    toml = [
        '[project]\nname = "noop-bench"',
        "default = [" + ", ".join(f'"cc_{g:02d}", "ar_{g:02d}"' for g in range(libs)) + ', "link"]',
        '[toolchain.host]\ntools = ["cp", "cat", "sh"]',
    ]
    rules = ["rule cp\n  command = cp $in $out", "rule cat\n  command = cat $in > $out"]
    script = ["set -e", "mkdir -p lib bin " + " ".join(f"obj/{g:02d}" for g in range(libs))]
    for g in range(libs):
        src = f"src/{g:02d}"
        for tree in (proj, ninja):
            (tree / src).mkdir(parents=True)
        objs = []
        for i in range(per_lib):
            text = "".join(f"int v{g}_{i}_{k} = {rng.randrange(1 << 30)};\n" for k in range(rng.randint(40, 160)))
            for tree in (proj, ninja):
                (tree / src / f"f{i:03d}.c").write_text(text)
            obj = f"obj/{g:02d}/f{i:03d}.o"
            rules.append(f"build {obj}: cp {src}/f{i:03d}.c")
            script.append(f"cp {src}/f{i:03d}.c {obj}")
            objs.append(obj)
        lib = f"lib/lib{g:02d}.a"
        toml.append(
            f'[action.cc_{g:02d}]\nforeach = "{src}/*.c"\ncommand = ["cp", "{{in}}", "obj/{g:02d}/{{stem}}.o"]\n'
            f'inputs = ["{{in}}"]\noutputs = ["obj/{g:02d}/{{stem}}.o"]'
        )
        toml.append(
            f'[action.ar_{g:02d}]\ncommand = ["sh", "-c", "cat obj/{g:02d}/*.o > {lib}"]\n'
            f'deps = ["cc_{g:02d}"]\noutputs = ["{lib}"]'
        )
        rules.append(f"build {lib}: cat {' '.join(objs)}")
        script.append(f"cat obj/{g:02d}/*.o > {lib}")
    archives = [f"lib/lib{g:02d}.a" for g in range(libs)]
    toml.append(
        '[action.link]\ncommand = ["sh", "-c", "cat lib/*.a > bin/app"]\n'
        "deps = [" + ", ".join(f'"ar_{g:02d}"' for g in range(libs)) + ']\noutputs = ["bin/app"]'
    )
    rules.append(f"build bin/app: cat {' '.join(archives)}")
    script.append("cat lib/*.a > bin/app")
    (proj / "ukbuild.toml").write_text("\n\n".join(toml) + "\n")
    (ninja / "build.ninja").write_text("\n".join(rules) + "\n")
    (ninja / "build.sh").write_text("\n".join(script) + "\n")
    return libs * (per_lib + 1) + 1


def bench(quick: bool) -> list[Row]:
    libs, per_lib = SIZES["quick" if quick else "full"]
    with workspace("noop") as root:
        actions = generate(root, libs, per_lib)
        proj, ninja = root / "proj", root / "ninja"
        env = ukbuild_env(root)
        build = [str(UKBUILD), "build", "-C", str(proj), "-o", str(root / "out"), "-j", str(JOBS)]
        say(f"noop: {actions} actions generated in {root}")

        shell_s = timed(["sh", "build.sh"], cwd=ninja)
        for built in ("obj", "lib", "bin"):
            shutil.rmtree(ninja / built)
        ninja_cold = timed([NINJA, "-C", str(ninja), "-j", str(JOBS)])
        say(f"noop: cold builds: shell script {shell_s:.1f} s, ninja -j{JOBS} {ninja_cold:.1f} s; ukbuild…")
        ukbuild_cold = timed(build, env=env)
        say(f"noop: cold build: ukbuild -j{JOBS} {ukbuild_cold:.1f} s")

        def ukbuild_noop() -> float:
            return timed(build, env=env, check=lambda out: out.startswith("ukbuild: up to date:"))

        def ninja_noop() -> float:
            return timed([NINJA, "-C", str(ninja)], check=lambda out: "no work to do" in out)

        alternate(2, ukbuild_noop, ninja_noop)  # warm-up
        ukb, nin = alternate(REPS, ukbuild_noop, ninja_noop)
        startup = median_of(REPS, lambda: timed([str(VENV_PYTHON), "-c", "pass"]))
        splits = [breakdown(build[1:], env) for _ in range(7)]
        outside, imports, main = (statistics.median(part) for part in zip(*splits))
        say(f"noop: ukbuild {ukb * 1e3:.1f} ms, ninja {nin * 1e3:.1f} ms; in-process split of ukbuild's no-op:"
            f" import ukbuild.cli {imports * 1e3:.1f} ms, cli.main {main * 1e3:.1f} ms, interpreter start-up"
            f" and exit {outside * 1e3:.1f} ms (python -c pass: {startup * 1e3:.1f} ms)")
    overhead = (ukbuild_cold - shell_s) / actions
    return [
        Row(f"no-op rebuild, {actions} actions", f"{ukb * 1e3:.1f} ms", f"ninja {nin * 1e3:.1f} ms",
            ukb / nin, target=2.0),
        Row(f"cold build, {actions} actions", f"{ukbuild_cold:.1f} s -j{JOBS}, +{overhead * 1e3:.2f} ms/action",
            f"sh {shell_s:.1f} s (ninja -j{JOBS} {ninja_cold:.1f} s)", ukbuild_cold / shell_s),
    ]


def breakdown(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """One no-op under ``_BREAKDOWN``: seconds of (start-up and exit, import ukbuild.cli, cli.main)."""
    start = time.perf_counter()
    out = run([str(VENV_PYTHON), "-c", _BREAKDOWN, *args], env=env)
    wall = time.perf_counter() - start
    imports, main = map(float, out.split())
    return wall - imports - main, imports, main
