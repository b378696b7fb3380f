"""Synthetic action graphs of growing size: no-op rebuild, one-file change, cold build, peak memory.

ukbuild vs ninja (``/usr/bin/ninja``) and GNU make (``/usr/bin/make``),
each on its own copy of the same generated sources, with an equivalent
``ukbuild.toml``, ``build.ninja`` and ``Makefile``.

The graph is shaped like a C project of L libraries of 100 sources each:
100·L "compile" actions (``cp`` of one 1–4 KiB source to an object), L
"archive" actions (``cat`` of a library's 100 objects) and one "link"
(``cat`` of the archives): 101·L + 1 actions.  Sizes: 1k (L = 10,
1,011 actions) and 10k (L = 99, 10,000 actions) by default; 50k (L = 495,
49,996 actions) only with ``--long`` (its cold build alone takes ukbuild
about 5 minutes on 2 cores).  Every action is a default target, so all
outputs land in the output dir, as in ninja's and make's build dirs.

Per size:

* cold build: ``-j`` = cores for all three; ukbuild's wall time and peak
  RSS are compared with ninja's (informational, regression-gated);
* no-op rebuild: medians of interleaved runs; target ukbuild <= 2x each;
  at 1k actions (and the quick sizes) judged against the baseline plus the
  interpreter's start-up (``python -c pass``, measured in the same
  interleaved runs): that start-up alone exceeds 2x ninja's whole 1k no-op,
  so no Python program can meet 2x of the bare baseline there (see
  docs/performance.md);
* one-file change: one source is rewritten (new content every time) and
  each tool rebuilds it, its archive and the link; target <= 5x each;
* on the largest size, the peak RSS of a no-op and of the cold build,
  against ninja's for the same operation.

Peak RSS comes from ``os.wait4`` on the tool's process (the maximum over
it and the children it waited for).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from pathlib import Path

from _common import (
    UKBUILD,
    VENV_PYTHON,
    Row,
    measure,
    median_of,
    run,
    say,
    timed,
    ukbuild_env,
    workspace,
)

NINJA = "/usr/bin/ninja"
MAKE = "/usr/bin/make"
PER_LIB = 100
#: size label: libraries (101 * L + 1 actions)
SIZES = {"1k": 10, "10k": 99, "50k": 495}
QUICK_SIZES = {"200": 2, "2k": 20}
#: repetitions of (no-op, one-file change) per size
REPS = {"1k": (15, 5), "10k": (9, 3), "50k": (5, 3), "200": (5, 3), "2k": (5, 3)}
#: sizes whose no-op target is judged against the baseline plus the interpreter's start-up
STARTUP_FLOOR = {"1k", "200", "2k"}
JOBS = os.cpu_count() or 1
NOOP_TARGET = 2.0
CHANGE_TARGET = 5.0
#: peak RSS over ninja's for the same operation on the largest graph: guard rails
#: against superlinear memory (a 10k cold build once peaked at 13.7 GB).
RSS_NOOP_TARGET = 6.0
RSS_COLD_TARGET = 20.0

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


def breakdown(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """One no-op under ``_BREAKDOWN``: seconds of (start-up and exit, import ukbuild.cli, cli.main)."""
    start = time.perf_counter()
    out = run([str(VENV_PYTHON), "-c", _BREAKDOWN, *args], env=env)
    wall = time.perf_counter() - start
    imports, main = map(float, out.split())
    return wall - imports - main, imports, main


def generate(root: Path, libs: int) -> int:
    """Write proj/ (ukbuild), ninja/ and make/ under ``root``, same sources in each; the action count."""
    rng = random.Random(10_000)
    trees = [root / "proj", root / "ninja", root / "make"]
    toml = [
        '[project]\nname = "graph-bench"',
        "default = [" + ", ".join(f'"cc_{g:03d}", "ar_{g:03d}"' for g in range(libs)) + ', "link"]',
        '[toolchain.host]\ntools = ["cp", "cat", "sh"]',
    ]
    ninja = ["rule cp\n  command = cp $in $out", "rule cat\n  command = cat $in > $out"]
    make = [".SUFFIXES:", "all: bin/app"]
    archives = []
    for g in range(libs):
        src = f"src/{g:03d}"
        for tree in trees:
            (tree / src).mkdir(parents=True)
        objs = []
        for i in range(PER_LIB):
            text = "".join(f"int v{g}_{i}_{k} = {rng.randrange(1 << 30)};\n" for k in range(rng.randint(40, 160)))
            for tree in trees:
                (tree / src / f"f{i:03d}.c").write_text(text)
            obj = f"obj/{g:03d}/f{i:03d}.o"
            ninja.append(f"build {obj}: cp {src}/f{i:03d}.c")
            objs.append(obj)
        lib = f"lib/lib{g:03d}.a"
        archives.append(lib)
        toml.append(
            f'[action.cc_{g:03d}]\nforeach = "{src}/*.c"\ncommand = ["cp", "{{in}}", "obj/{g:03d}/{{stem}}.o"]\n'
            f'inputs = ["{{in}}"]\noutputs = ["obj/{g:03d}/{{stem}}.o"]'
        )
        toml.append(
            f'[action.ar_{g:03d}]\ncommand = ["sh", "-c", "cat obj/{g:03d}/*.o > {lib}"]\n'
            f'deps = ["cc_{g:03d}"]\noutputs = ["{lib}"]'
        )
        ninja.append(f"build {lib}: cat {' '.join(objs)}")
        # Explicit rules, as build.ninja has (and as generated Makefiles do); make does not create
        # directories, so they are made here, once.
        (root / "make" / f"obj/{g:03d}").mkdir(parents=True)
        make.extend(f"{obj}: {src}/{obj.rsplit('/', 1)[1][:-2]}.c\n\tcp $< $@" for obj in objs)
        make.append(f"{lib}: {' '.join(objs)}\n\tcat $^ > $@")
    toml.append(
        '[action.link]\ncommand = ["sh", "-c", "cat lib/*.a > bin/app"]\n'
        "deps = [" + ", ".join(f'"ar_{g:03d}"' for g in range(libs)) + ']\noutputs = ["bin/app"]'
    )
    ninja.append(f"build bin/app: cat {' '.join(archives)}")
    make.append(f"bin/app: {' '.join(archives)}\n\tcat $^ > $@")
    for built in ("lib", "bin"):
        (root / "make" / built).mkdir()
    (root / "proj" / "ukbuild.toml").write_text("\n\n".join(toml) + "\n")
    (root / "ninja" / "build.ninja").write_text("\n".join(ninja) + "\n")
    (root / "make" / "Makefile").write_text("\n".join(make) + "\n")
    return libs * (PER_LIB + 1) + 1


class Graph:
    """One generated graph and the commands that build it with each tool."""

    def __init__(self, root: Path, libs: int) -> None:
        self.root, self.libs = root, libs
        self.actions = generate(root, libs)
        self.env = ukbuild_env(root)
        self.edits = 0
        proj = root / "proj"
        self.argv = {
            "ukbuild": [str(UKBUILD), "build", "-C", str(proj), "-o", str(root / "out"), "-j", str(JOBS)],
            "ninja": [NINJA, "-C", str(root / "ninja"), "-j", str(JOBS)],
            "make": [MAKE, "-C", str(root / "make"), "-j", str(JOBS), "-r"],
        }
        self.cwd = {"ukbuild": proj, "ninja": root / "ninja", "make": root / "make"}

    def run(self, tool: str, expect: str | None = None, rss: bool = False) -> tuple[float, int]:
        """(wall seconds, peak RSS bytes if ``rss``) of one run of ``tool``; ``expect`` checks its stdout."""
        seconds, peak, out = measure(self.argv[tool], env=self.env if tool == "ukbuild" else None, rss=rss)
        if expect is not None and expect not in out:
            raise RuntimeError(f"graph: {tool}: expected {expect!r} in its output:\n{out[-1500:]}")
        return seconds, peak

    def noop(self, tool: str) -> float:
        expect = {"ukbuild": "ukbuild: up to date:", "ninja": "no work to do", "make": "Nothing to be done"}[tool]
        return self.run(tool, expect)[0]

    def edit(self, tool: str) -> None:
        """Give one source in the middle library new content, in ``tool``'s tree."""
        self.edits += 1
        path = self.cwd[tool] / "src" / f"{self.libs // 2:03d}" / "f050.c"
        with open(path, "a") as f:
            f.write(f"int edited_{self.edits} = {self.edits};\n")

    def change(self, tool: str) -> float:
        self.edit(tool)
        expect = {"ukbuild": "3 executed", "ninja": "[3/3]", "make": "bin/app"}[tool]
        return self.run(tool, expect)[0]


def startup() -> float:
    """Wall seconds of the venv's interpreter starting and exiting: a floor under any Python no-op."""
    return timed([str(VENV_PYTHON), "-c", "pass"])


def interleaved(reps: int, measure_one, tools: tuple[str, ...]) -> dict[str, float]:
    times: dict[str, list[float]] = {t: [] for t in tools}
    for _ in range(reps):
        for tool in tools:
            times[tool].append(measure_one(tool))
    return {t: statistics.median(v) for t, v in times.items()}


def bench(quick: bool, long: bool = False) -> list[Row]:
    sizes = QUICK_SIZES if quick else {k: v for k, v in SIZES.items() if long or k != "50k"}
    rows: list[Row] = []
    growth: list[tuple[str, int, dict[str, float], dict[str, float], float, float]] = []
    tools = ("ukbuild", "ninja", "make")
    largest = list(sizes)[-1]
    for label, libs in sizes.items():
        with workspace(f"graph{label}") as root:
            g = Graph(root, libs)
            n = g.actions
            say(f"graph {label}: {n} actions generated in {root}")
            ninja_cold, ninja_cold_rss = g.run("ninja", rss=True)
            make_cold, _ = g.run("make")
            ukb_cold, ukb_cold_rss = g.run("ukbuild", "build ok", rss=True)
            say(f"graph {label}: cold builds -j{JOBS}: ninja {ninja_cold:.1f} s, make {make_cold:.1f} s, "
                f"ukbuild {ukb_cold:.1f} s ({ukb_cold_rss / 2**20:.0f} MiB peak RSS)")
            noop_reps, change_reps = REPS[label]
            interleaved(1, g.noop, tools)  # warm-up
            noop = interleaved(noop_reps, lambda t: startup() if t == "python" else g.noop(t), (*tools, "python"))
            python = noop.pop("python")
            change = interleaved(change_reps, g.change, tools)
            g.run("ukbuild", "up to date")  # settle the no-op record after the last edit
            say(f"graph {label}: no-op " + ", ".join(f"{t} {noop[t] * 1e3:.1f} ms" for t in tools)
                + f" (python -c pass {python * 1e3:.1f} ms); one-file change "
                + ", ".join(f"{t} {change[t] * 1e3:.0f} ms" for t in tools))
            growth.append((label, n, noop, change, ukb_cold, ninja_cold))
            for base in ("ninja", "make"):
                if label in STARTUP_FLOOR:
                    rows.append(Row(f"no-op rebuild, {n} actions, vs {base} + python start-up",
                                    f"{noop['ukbuild'] * 1e3:.1f} ms",
                                    f"{base} {noop[base] * 1e3:.1f} + {python * 1e3:.1f} ms",
                                    noop["ukbuild"] / (noop[base] + python), target=NOOP_TARGET,
                                    key=f"noop-{label}-{base}+python"))
                    continue
                rows.append(Row(f"no-op rebuild, {n} actions, vs {base}", f"{noop['ukbuild'] * 1e3:.1f} ms",
                                f"{base} {noop[base] * 1e3:.1f} ms", noop["ukbuild"] / noop[base],
                                target=NOOP_TARGET, key=f"noop-{label}-{base}"))
            for base in ("ninja", "make"):
                rows.append(Row(f"one-file change, {n} actions, vs {base}", f"{change['ukbuild'] * 1e3:.0f} ms",
                                f"{base} {change[base] * 1e3:.0f} ms", change["ukbuild"] / change[base],
                                target=CHANGE_TARGET, key=f"change-{label}-{base}"))
            rows.append(Row(f"cold build, {n} actions", f"{ukb_cold:.1f} s, {ukb_cold / n * 1e3:.2f} ms/action",
                            f"ninja {ninja_cold:.1f} s (make {make_cold:.1f} s)", ukb_cold / ninja_cold,
                            key=f"cold-{label}"))
            if label == largest:
                splits = [breakdown(g.argv["ukbuild"][1:], g.env) for _ in range(7)]
                outside, imports, main = (statistics.median(part) for part in zip(*splits))
                startup_median = median_of(7, startup)
                say(f"graph {label}: in-process split of ukbuild's no-op: import ukbuild.cli {imports * 1e3:.1f} ms, "
                    f"cli.main {main * 1e3:.1f} ms, interpreter start-up and exit {outside * 1e3:.1f} ms "
                    f"(python -c pass: {startup_median * 1e3:.1f} ms)")
                ukb_noop_rss = min(g.run("ukbuild", "up to date", rss=True)[1] for _ in range(3))
                ninja_noop_rss = min(g.run("ninja", "no work to do", rss=True)[1] for _ in range(3))
                rows.append(Row(f"peak RSS, no-op, {n} actions", f"{ukb_noop_rss / 2**20:.0f} MiB",
                                f"ninja {ninja_noop_rss / 2**20:.1f} MiB", ukb_noop_rss / ninja_noop_rss,
                                target=RSS_NOOP_TARGET, key=f"rss-noop-{label}"))
                rows.append(Row(f"peak RSS, cold build, {n} actions", f"{ukb_cold_rss / 2**20:.0f} MiB",
                                f"ninja {ninja_cold_rss / 2**20:.1f} MiB", ukb_cold_rss / ninja_cold_rss,
                                target=RSS_COLD_TARGET, key=f"rss-cold-{label}"))
    say(growth_table(growth))
    return rows


def growth_table(growth) -> str:
    """How each tool's cost grows with the graph: times, and microseconds per action."""
    lines = ["graph growth (median wall time; µs per action in brackets):"]
    for label, n, noop, change, ukb_cold, ninja_cold in growth:
        lines.append(
            f"  {label:>4} {n:>6} actions | no-op " + "  ".join(
                f"{t} {noop[t] * 1e3:7.1f} ms [{noop[t] / n * 1e6:5.1f}]" for t in noop)
            + " | one-file " + "  ".join(f"{t} {change[t] * 1e3:7.0f} ms" for t in change)
            + f" | cold ukbuild {ukb_cold:6.1f} s, ninja {ninja_cold:5.1f} s")
    if len(growth) > 1:
        (a, na, noop_a, change_a, *_), (b, nb, noop_b, change_b, *_) = growth[0], growth[-1]
        lines.append(f"  {a} -> {b} ({nb / na:.0f}x the actions): no-op "
                     + ", ".join(f"{t} x{noop_b[t] / noop_a[t]:.1f}" for t in noop_a)
                     + "; one-file change " + ", ".join(f"{t} x{change_b[t] / change_a[t]:.1f}" for t in change_a))
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    for row in bench("--quick" in sys.argv, "--long" in sys.argv):
        print(row)
