"""ukbuild as one hermetic action of a Bazel build (examples/bazel, Debian's bazel-bootstrap 4.2.x).

One Bazel server for the whole scenario, with its output root, HOME and
temp files under tmp_path; downloads go to a dead proxy, so the build is
proven offline.  Bazel's own summary (`INFO: N processes: …`) and its
`--explain` log say which actions ran.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "bazel"
OUTPUTS = ("hello/kernel/hello.elf", "hello/image/hello-disk.img")
UKBUILD_ACTION = "Building //:hello with ukbuild"
CONSUMER_ACTION = "Executing genrule //:sha256sums"
DEAD_PROXY = "http://127.0.0.1:9"


class Bazel:
    def __init__(self, tmp_path: Path) -> None:
        self.workspace = tmp_path / "ws"
        self.root = tmp_path / "bazel-root"
        self.home = tmp_path / "home"
        self.explain = tmp_path / "explain.log"
        self.home.mkdir()
        (tmp_path / "tmp").mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TMPDIR": str(tmp_path / "tmp"),
            "UKBUILD_PYTHON": sys.executable,
            **{name: DEAD_PROXY for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
        }

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # Debian's system rc (/etc/bazel/bazelrc) is kept: it sets --install_base for bazel-bootstrap.
        startup = [f"--output_user_root={self.root}", "--max_idle_secs=60", "--nohome_rc",
                   "--host_jvm_args=-XX:-UsePerfData"]
        return subprocess.run(["bazel", *startup, *args], cwd=self.workspace, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def build(self, *targets: str) -> tuple[dict[str, int], list[str]]:
        """Build; return Bazel's process counts by kind and the actions its explain log says it executed."""
        self.explain.unlink(missing_ok=True)
        proc = self("build", "--color=no", "--curses=no", f"--explain={self.explain}", "--verbose_explanations",
                    *(targets or ("//...",)))
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "Download from" not in proc.stderr and "fetch of repository" not in proc.stderr, proc.stderr
        summary = re.findall(r"^INFO: (\d+) process(?:es)?(?:: (.*))?\.$", proc.stderr, re.MULTILINE)
        assert len(summary) == 1, proc.stderr[-4000:]
        total, detail = summary[0]
        kinds = {kind: int(n) for n, kind in re.findall(r"(\d+) ([\w-]+)", detail)}
        assert sum(kinds.values()) == int(total)
        executed = re.findall(r"^Executing action '(.*)': ", self.explain.read_text(), re.MULTILINE)
        return kinds, [a for a in executed if not a.startswith("BazelWorkspaceStatusAction")]

    def shutdown(self) -> None:
        try:
            self("shutdown", timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for pidfile in self.root.glob("*/server/server.pid.txt"):  # only our server, by its PID
            try:
                pid = int(pidfile.read_text().strip())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass


def spawned(kinds: dict[str, int]) -> int:
    """Processes Bazel actually spawned (sandboxed or not), leaving out its internal bookkeeping."""
    return sum(n for kind, n in kinds.items() if kind != "internal")


@pytest.fixture
def bazel(tmp_path: Path) -> Iterator[Bazel]:
    runner = Bazel(tmp_path)
    shutil.copytree(EXAMPLE, runner.workspace, symlinks=True, ignore=shutil.ignore_patterns("bazel-*"))
    try:
        yield runner
    finally:
        runner.shutdown()


@pytest.mark.slow
@pytest.mark.realtool("bazel")
def test_bazel_runs_ukbuild_as_one_hermetic_cached_action(bazel: Bazel, tmp_path: Path) -> None:
    ws = bazel.workspace
    hello_c = ws / "hello" / "hello.c"
    assert hello_c.read_bytes() == (REPO / "examples" / "multiboot" / "hello.c").read_bytes(), \
        "examples/bazel/hello/hello.c should stay a copy of examples/multiboot/hello.c"

    def direct_build(name: str) -> Path:
        """The same project built by ukbuild itself, outside Bazel."""
        out = tmp_path / name
        proc = subprocess.run(
            [sys.executable, "-m", "ukbuild", "build", "-C", str(ws / "hello"), "-o", str(out),
             "--cache-dir", str(tmp_path / "ukbuild-cache"), "hello", "hello-disk"],
            capture_output=True, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return out

    def assert_same_bytes_as_direct_build(name: str) -> None:
        out = direct_build(name)
        bin_dir = ws / "bazel-bin"
        for path in OUTPUTS:
            assert (bin_dir / path).read_bytes() == (out / path.removeprefix("hello/")).read_bytes(), path
        # Only the declared outputs come out of the action: no ukbuild state or scratch dir.
        produced = sorted(str(p.relative_to(bin_dir)) for p in (bin_dir / "hello").rglob("*") if not p.is_dir())
        assert produced == sorted(OUTPUTS)
        assert not list(bin_dir.glob("*.ukbuild-tmp"))

    # Cold: the server starts, ukbuild and the downstream genrule run, sandboxed.
    start = time.monotonic()
    kinds, executed = bazel.build()
    cold = time.monotonic() - start
    assert sorted(executed) == sorted([UKBUILD_ACTION, CONSUMER_ACTION]), executed
    assert spawned(kinds) == 2, kinds
    assert "linux-sandbox" in kinds or "processwrapper-sandbox" in kinds, kinds
    assert_same_bytes_as_direct_build("direct-1")
    assert (ws / "bazel-bin" / "hello" / "kernel" / "hello.elf").read_bytes().find(b"HELLO from ukbuild") >= 0

    # Unchanged: nothing runs.
    kinds, executed = bazel.build()
    assert spawned(kinds) == 0 and executed == [], (kinds, executed)

    # A file that is no input of anything: nothing runs.
    (ws / "hello" / "NOTES.txt").write_text("not an input\n")
    (ws / "README.md").write_text((ws / "README.md").read_text() + "\nan edit\n")
    kinds, executed = bazel.build()
    assert spawned(kinds) == 0 and executed == [], (kinds, executed)

    # A comment in a recipe input: only the ukbuild action reruns; its outputs
    # are byte-identical, so Bazel does not rerun the genrule that reads them.
    source = hello_c.read_text()
    hello_c.write_text(source.replace("The smallest ukbuild", "The tiniest ukbuild"))
    kinds, executed = bazel.build()
    assert executed == [UKBUILD_ACTION] and spawned(kinds) == 1, (kinds, executed)

    # A real change: ukbuild reruns, its consumer too, and the bytes still equal a direct build.
    hello_c.write_text(source.replace("HELLO from ukbuild", "HELLO from Bazel"))
    kinds, executed = bazel.build()
    assert sorted(executed) == sorted([UKBUILD_ACTION, CONSUMER_ACTION]) and spawned(kinds) == 2, (kinds, executed)
    assert b"HELLO from Bazel" in (ws / "bazel-bin" / "hello" / "kernel" / "hello.elf").read_bytes()
    assert_same_bytes_as_direct_build("direct-2")

    # Neither Bazel nor ukbuild wrote under HOME.
    assert not any(bazel.home.iterdir()), sorted(bazel.home.rglob("*"))
    assert cold < 60, f"cold build took {cold:.1f} s"
