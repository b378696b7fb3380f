"""Remote execution on BuildGrid (PostgreSQL scheduler) with ukbuild's own Bots-API workers.

Builds go through ``api.Build`` with ``BuildOptions(remote_executor=…)`` and
through ``ukbuild build --remote-executor``, as users run them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.helpers import EXAMPLE, tree_bytes
from tests.remote.conftest import Server, WorkerProcess, start_worker
from ukbuild import api
from ukbuild._reapi import ActionResult, Digest
from ukbuild.remote import RemoteConfig

ALL = ["compile[greet]", "compile[main]", "compile[util]", "lib", "link", "package"]


@pytest.fixture
def remote_executor(execution: Server) -> RemoteConfig:
    """Where ``build(…, remote=…)`` sends its actions."""
    return RemoteConfig(execution.url)


@pytest.fixture
def workers(tmp_path: Path, execution: Server) -> Callable[..., WorkerProcess]:
    started: list[WorkerProcess] = []

    def start(bot_id: str, *args: str) -> WorkerProcess:
        worker = start_worker(tmp_path / "workers", execution.url, bot_id, *args)
        started.append(worker)
        return worker

    yield start  # type: ignore[misc]
    for worker in started:
        worker.stop()


def build(checkout: Path, cache: Path, remote: RemoteConfig | None, jobs: int = 32,
          on_event: Callable[[dict], None] | None = None) -> api.BuildResult:
    options = api.BuildOptions(cache_dir=cache, jobs=jobs, remote_executor=remote)
    b = api.Build(api.load_project(checkout), [], options)
    if on_event is not None:
        b.subscribe(on_event)
    return b.run()


def outputs(result: api.BuildResult) -> dict[str, dict[str, Digest]]:
    """Every action's output digests (files by digest, directories by Merkle root)."""
    out: dict[str, dict[str, Digest]] = {}
    for name, outcome in result.outcomes.items():
        r: ActionResult | None = outcome.result
        assert r is not None, name
        out[name] = {f.path: f.digest for f in r.output_files}
        out[name].update({d.path + "/": d.root_digest for d in r.output_directories})
    return out


def project(tmp_path: Path, name: str, body: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "ukbuild.toml").write_text(f'[project]\nname = "{name}"\n\n[toolchain.host]\ntools = ["sh", "sleep"]\n\n{body}')
    return root


def test_remote_graph_matches_local_build(
    tmp_path: Path, workers: Callable[..., WorkerProcess], remote_executor: RemoteConfig
) -> None:
    """hello-c on two workers, -j 32: the same output digests and bytes as a local build."""
    one, two = workers("w1", "--project", str(EXAMPLE)), workers("w2", "--tools", "cc,ar,sh,tar,gzip")
    remote_checkout = tmp_path / "remote" / "hello-c"
    shutil.copytree(EXAMPLE, remote_checkout, ignore=shutil.ignore_patterns("out"))
    start = time.monotonic()
    remote = build(remote_checkout, tmp_path / "remote-cache", remote_executor)
    seconds = time.monotonic() - start
    assert remote.ok, remote.errors
    assert sorted(n for n, o in remote.outcomes.items() if o.status == "executed") == ALL
    assert one.leases() + two.leases() == len(ALL)
    assert seconds < 60

    local_checkout = tmp_path / "local" / "hello-c"
    shutil.copytree(EXAMPLE, local_checkout, ignore=shutil.ignore_patterns("out"))
    local = build(local_checkout, tmp_path / "local-cache", None)
    assert local.ok
    assert outputs(remote) == outputs(local)
    assert tree_bytes(remote_checkout / "out") == tree_bytes(local_checkout / "out")

    again = build(remote_checkout, tmp_path / "remote-cache", remote_executor)  # the result is under ukbuild's key
    assert again.count("cached") == len(ALL)


def test_worker_lacking_the_toolchain_gets_no_work(
    tmp_path: Path, workers: Callable[..., WorkerProcess], remote_executor: RemoteConfig
) -> None:
    """Platform properties carry the toolchain identity: a worker with other tools is not picked."""
    other = workers("other", "--tools", "sh,tar")
    right = project(tmp_path, "pick", f'[action.pick]\ncommand = ["sh", "-c", "echo {uuid.uuid4()} > out.txt"]\noutputs = ["out.txt"]\n')
    done = threading.Event()
    result: list[api.BuildResult] = []
    thread = threading.Thread(target=lambda: (result.append(build(right, tmp_path / "cache", remote_executor)), done.set()))
    thread.start()
    time.sleep(3)
    assert not done.is_set() and other.leases() == 0
    matching = workers("matching", "--project", str(right))
    thread.join(60)
    assert result and result[0].ok
    assert matching.leases() == 1 and other.leases() == 0


@pytest.mark.parametrize("replacement", ["second-worker", "restarted-worker"])
def test_worker_killed_mid_job_has_its_job_retried(
    tmp_path: Path, workers: Callable[..., WorkerProcess], remote_executor: RemoteConfig, replacement: str
) -> None:
    token = uuid.uuid4()
    root = project(tmp_path, "slow", f'[action.slow]\ncommand = ["sh", "-c", "sleep 2; echo {token} > out.txt"]\noutputs = ["out.txt"]\n')
    first = workers("first", "--project", str(root))
    result: list[api.BuildResult] = []
    thread = threading.Thread(target=lambda: result.append(build(root, tmp_path / "cache", remote_executor)))
    start = time.monotonic()
    thread.start()
    first.wait_for("running sh")
    first.kill()
    second = workers("first" if replacement == "restarted-worker" else "second", "--project", str(root))
    thread.join(90)
    assert result, "the build did not finish"
    assert result[0].ok, result[0].errors
    assert (root / "out" / "out.txt").read_text() == f"{token}\n"
    assert second.leases() == 1
    assert time.monotonic() - start < 60


def test_failing_command_is_a_failure_and_not_cached(
    tmp_path: Path, workers: Callable[..., WorkerProcess], remote_executor: RemoteConfig
) -> None:
    worker = workers("w", "--tools", "sh,sleep")
    token = uuid.uuid4()
    root = project(tmp_path, "fails", f'[action.bad]\ncommand = ["sh", "-c", "echo {token}; echo boom >&2; exit 3"]\noutputs = ["out.txt"]\n')
    for _ in range(2):  # the second build runs it again: nothing was cached, locally or remotely
        result = build(root, tmp_path / "cache", remote_executor)
        assert not result.ok
        outcome = result.outcomes["bad"]
        assert outcome.status == "failed" and outcome.error is not None
        assert outcome.error.reason == "action-failed"
        assert outcome.error.message == "bad: command failed with exit status 3"
        assert "boom" in (outcome.error.detail or "") and str(token) in (outcome.error.detail or "")
        assert outcome.key is not None and result.count("cached") == 0
    assert worker.leases() == 2  # BuildGrid did not answer the second Execute from its cache


def test_command_killed_by_a_signal_says_which(
    tmp_path: Path, workers: Callable[..., WorkerProcess], remote_executor: RemoteConfig
) -> None:
    workers("w", "--tools", "sh,sleep")
    root = project(tmp_path, "killed", f'[action.k]\ncommand = ["sh", "-c", "echo {uuid.uuid4()}; kill -9 $$"]\noutputs = ["x"]\n')
    error = build(root, tmp_path / "cache", remote_executor).outcomes["k"].error
    assert error is not None and error.reason == "action-failed"
    assert error.message == "k: command killed by SIGKILL"


def test_missing_output_is_a_build_error(
    tmp_path: Path, workers: Callable[..., WorkerProcess], remote_executor: RemoteConfig
) -> None:
    workers("w", "--tools", "sh,sleep")
    root = project(tmp_path, "lazy", f'[action.lazy]\ncommand = ["sh", "-c", "echo {uuid.uuid4()}"]\noutputs = ["out.txt", "dir/"]\n')
    result = build(root, tmp_path / "cache", remote_executor)
    error = result.outcomes["lazy"].error
    assert error is not None and error.reason == "missing-output"
    assert "'dir/' was not produced" in error.message or "'out.txt' was not produced" in error.message


def test_special_file_output_is_named(
    tmp_path: Path, workers: Callable[..., WorkerProcess], remote_executor: RemoteConfig
) -> None:
    """A named pipe as a declared output, or inside one, on a worker: the failure names the output
    as the action sees it (it was 'not produced', or a path in the worker's scratch dir)."""
    workers("w", "--tools", "sh,sleep")
    root = project(tmp_path, "pipes", '[action.f]\ncommand = ["sh", "-c", "mkfifo pipe"]\noutputs = ["pipe"]\n'
                   '[action.d]\ncommand = ["sh", "-c", "mkdir d && mkfifo d/pipe"]\noutputs = ["d/"]\n')
    result = build(root, tmp_path / "cache", remote_executor)
    for name, path in (("f", "pipe"), ("d", "d/pipe")):
        error = result.outcomes[name].error
        assert error is not None and error.reason == "remote-execution-failed"
        assert error.message == (f"{name}: remote execution failed: output {path}: a named pipe; "
                                 "ukbuild stores only regular files, symlinks and directories")
    assert result.count("cached") == 0


def test_cli_remote_executor(tmp_path: Path, workers: Callable[..., WorkerProcess], execution: Server) -> None:
    """``ukbuild build --remote-executor URL`` runs the action on a worker, not locally."""
    token = uuid.uuid4()
    root = project(tmp_path, "cli", f'[action.where]\ncommand = ["sh", "-c", "echo {token} > out.txt"]\noutputs = ["out.txt"]\n')
    worker = workers("cli", "--project", str(root))
    done = subprocess.run(
        [sys.executable, "-m", "ukbuild", "build", "-C", str(root), "--cache-dir", str(tmp_path / "cache"),
         "--remote-executor", execution.url, "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    started = [json.loads(line) for line in done.stdout.splitlines() if '"build-started"' in line]
    assert started and started[0]["jobs"] >= 32
    assert worker.leases() == 1
    assert (root / "out" / "out.txt").read_text() == f"{token}\n"


def test_sandbox_with_remote_executor_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path, "both", '[action.x]\ncommand = ["sh", "-c", "echo > out.txt"]\noutputs = ["out.txt"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "ukbuild", "build", "-C", str(root), "--cache-dir", str(tmp_path / "cache"),
         "--sandbox", "--remote-executor", "grpc://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "--sandbox isolates local actions" in done.stderr and "Traceback" not in done.stderr
    assert not (root / "out" / "out.txt").exists()
