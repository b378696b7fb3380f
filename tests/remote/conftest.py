"""Servers for the remote-cache tests, each on a free 127.0.0.1 port, stopped by its own PID.

- ``nginx``: Debian's nginx with WebDAV ``PUT`` (a server people run as a
  Bazel HTTP cache), private config, pid file, logs and temp paths in tmp.
- ``fake_http``: a stdlib server speaking the bazel-remote protocol from
  memory, with switchable faults (slow, 500s, wrong bytes) and a request log.
- ``buildgrid`` / ``start_buildgrid``: BuildGrid 0.9.1 (CAS + ActionCache +
  ByteStream) from the venv ``tests/remote/setup_buildgrid.sh`` makes;
  ``$UKBUILD_BUILDGRID_VENV``, default ``.venv/buildgrid``.
- ``postgres``: a private PostgreSQL 15 cluster (Debian's binaries) on a free
  loopback port, stopped with ``pg_ctl stop``; ``execution``: a BuildGrid
  with the Execution and Bots services on it (short keepalive, so a dead
  worker's jobs come back in seconds); ``start_worker``: a
  ``python -m ukbuild.remote.worker`` process against it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import attrs
import pytest

from tests.needs import free_port, require  # noqa: F401 - free_port is re-exported to the remote tests
from ukbuild._store import Store

REPO = Path(__file__).resolve().parents[2]
BUILDGRID_VENV = Path(os.environ.get("UKBUILD_BUILDGRID_VENV", REPO / ".venv" / "buildgrid"))
START_TIMEOUT = 30.0


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session: its process group, by the leader's PID."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _wait_ready(process: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log.read_text()[-2000:]}"
            )
        if ready():
            return
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"server not ready within {START_TIMEOUT:g} s:\n{log.read_text()[-2000:]}")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "cache-a") as s:
        yield s


@pytest.fixture
def store_b(tmp_path: Path) -> Iterator[Store]:
    """A second, fresh local store: "machine B"."""
    with Store(tmp_path / "cache-b") as s:
        yield s


# --- nginx --------------------------------------------------------------------------


@attrs.frozen
class Server:
    url: str
    root: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop(self.process)


NGINX_CONF = """\
daemon off;
user root;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    client_max_body_size 0;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root}/data;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
            {auth}
        }}
    }}
}}
"""


def start_nginx(root: Path, *, credentials: tuple[str, str] | None = None) -> Server:
    nginx = shutil.which("nginx")
    assert nginx is not None
    for sub in ("data", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    auth = ""
    if credentials is not None:
        (root / "htpasswd").write_text(f"{credentials[0]}:{{PLAIN}}{credentials[1]}\n")
        auth = f'auth_basic "cache"; auth_basic_user_file {root}/htpasswd;'
    for _ in range(5):
        port = free_port()
        conf = root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=root, port=port, auth=auth))
        log = root / "stderr.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    "timeout",
                    "1800",
                    nginx,
                    "-p",
                    str(root),
                    "-c",
                    str(conf),
                    "-e",
                    str(root / "error.log"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready(port: int = port) -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                conn.request("HEAD", "/")
                conn.getresponse().read()  # any answer (403, 401) means it is listening
            except OSError:
                return False
            finally:
                conn.close()
            return True

        try:
            _wait_ready(process, ready, root / "error.log")
        except RuntimeError:
            if "Address already in use" in (root / "error.log").read_text():
                continue  # another worker took the port between probe and bind
            raise
        return Server(f"http://127.0.0.1:{port}", root, process)
    raise RuntimeError("no free port for nginx")


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Server]:
    server = start_nginx(tmp_path / "nginx")
    yield server
    server.stop()


# --- fake bazel-remote --------------------------------------------------------------


@attrs.define
class FakeHttpCache:
    """An in-memory bazel-remote: ``cas``/``ac`` dicts, a request log, and a fault switch."""

    url: str = ""
    cas: dict[str, bytes] = attrs.field(factory=dict)
    ac: dict[str, bytes] = attrs.field(factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = attrs.field(factory=list)
    fault: str = ""  # "" | "slow" | "error" | "wrong-bytes"
    delay: float = 2.0
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.requests]


def _fake_handler(state: FakeHttpCache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def _area(self) -> tuple[dict[str, bytes], str] | None:
            parts = self.path.strip("/").split("/")
            if len(parts) >= 2 and parts[-2] in ("cas", "ac"):
                return (state.cas if parts[-2] == "cas" else state.ac), parts[-1]
            return None

        def _begin(self) -> bool:
            with state.lock:
                state.requests.append((self.command, self.path, dict(self.headers)))
            if state.fault == "slow":
                time.sleep(state.delay)
            if state.fault == "error":
                self._send(500, b"broken")
                return False
            return True

        def _send(self, status: int, body: bytes, *, head: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _get(self, head: bool) -> None:
            if not self._begin():
                return
            found = self._area()
            data = found[0].get(found[1]) if found else None
            if data is None:
                self._send(404, b"", head=head)
                return
            if state.fault == "wrong-bytes" and found and found[0] is state.cas:
                data = bytes([data[0] ^ 0xFF]) + data[1:] if data else data
            self._send(200, data, head=head)

        def do_GET(self) -> None:
            self._get(head=False)

        def do_HEAD(self) -> None:
            self._get(head=True)

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self._begin():
                return
            found = self._area()
            if found is None:
                self._send(400, b"")
                return
            found[0][found[1]] = body
            self._send(201, b"")

    return Handler


@pytest.fixture
def fake_http() -> Iterator[FakeHttpCache]:
    state = FakeHttpCache()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _fake_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# --- BuildGrid ---------------------------------------------------------------------------

BUILDGRID_CONF = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
storages:
  - !disk-storage &cas-store
    path: {root}/cas
caches:
  - !lru-action-cache &ac
    storage: *cas-store
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
  - !lru-action-cache &team-ac
    storage: *cas-store
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
instances:
  - name: ""
    services:
      - !cas
        storage: *cas-store
      - !bytestream
        storage: *cas-store
      - !action-cache
        cache: *ac
  - name: "team"
    services:
      - !cas
        storage: *cas-store
      - !bytestream
        storage: *cas-store
      - !action-cache
        cache: *team-ac
thread-pool-size: 8
"""


def start_buildgrid(root: Path, config: str = BUILDGRID_CONF, **values: object) -> Server:
    """Start ``bgd server start`` on a free port; ready when GetCapabilities answers."""
    from ukbuild.remote import RemoteConfig, RemoteError
    from ukbuild.remote.reapi import GrpcCache

    bgd = BUILDGRID_VENV / "bin" / "bgd"
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        port = free_port()
        conf = root / "bgd.yml"
        conf.write_text(config.format(root=root, port=port, **values))
        log = root / "server.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    "timeout",
                    "1800",
                    str(bgd),
                    "server",
                    "start",
                    "--pid-file",
                    str(root / "bgd.pid"),
                    str(conf),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=root,
            )
        url = f"grpc://127.0.0.1:{port}"
        probe = GrpcCache(RemoteConfig(url, timeout=1.0))

        def ready(probe: GrpcCache = probe) -> bool:
            try:
                probe.capabilities()
            except RemoteError:
                return False
            return True

        try:
            _wait_ready(process, ready, log)
        except RuntimeError:
            if "address already in use" in log.read_text().lower():
                continue
            raise
        finally:
            probe.close()
        return Server(url, root, process)
    raise RuntimeError("no free port for BuildGrid")


def _need_buildgrid() -> None:
    require(
        (BUILDGRID_VENV / "bin" / "bgd").exists(),
        f"needs BuildGrid in {BUILDGRID_VENV} (tests/remote/setup_buildgrid.sh {BUILDGRID_VENV})",
    )
    require(_has_grpc(), "needs grpcio (pip install -e '.[remote]')")


def _has_grpc() -> bool:
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def need_grpc() -> None:
    require(_has_grpc(), "needs grpcio (pip install -e '.[remote]')")


@pytest.fixture(scope="session")
def buildgrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One BuildGrid per xdist worker, shared by the tests that do not stop it."""
    _need_buildgrid()
    server = start_buildgrid(tmp_path_factory.mktemp("buildgrid"))
    yield server
    server.stop()


@pytest.fixture
def private_buildgrid(tmp_path: Path) -> Iterator[Server]:
    """A BuildGrid of this test's own (for tests that stop it)."""
    _need_buildgrid()
    server = start_buildgrid(tmp_path / "buildgrid")
    yield server
    server.stop()


# --- PostgreSQL, BuildGrid with execution, workers -----------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")

EXECUTION_CONF = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
connections:
  - !sql-connection &sql
    connection-string: {database}
storages:
  - !disk-storage &cas-store
    path: {root}/cas
caches:
  - !lru-action-cache &ac
    storage: *cas-store
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &sched
    sql: *sql
    storage: *cas-store
    action-cache: *ac
    bot-session-keepalive-timeout: 5
    session-expiry-timer-interval: 1
    poll-interval: 0.2
    bot-poll-interval: 0.2
    job-assignment-interval: 0.1
    max-job-attempts: 3
    property-set: !dynamic-property-set
      match-property-keys: [OSFamily, ukbuild-toolchain]
      wildcard-property-keys: []
instances:
  - name: ""
    services:
      - !cas
        storage: *cas-store
      - !bytestream
        storage: *cas-store
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *sched
        operation-stream-keepalive-timeout: 5
thread-pool-size: 32
"""


@attrs.frozen
class Postgres:
    url: str
    data: Path

    def stop(self) -> None:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])


def _as_postgres(argv: list[str]) -> None:
    """Run a PostgreSQL tool; as root it must run as the postgres user (initdb refuses root)."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)


def start_postgres(root: Path) -> Postgres:
    """A throwaway cluster with database ``bgd`` owned by role ``bgd``, schema from ``bgd migrate``."""
    root.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    _as_postgres([str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-N"])
    for _ in range(5):
        port = free_port()
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        try:
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "pg.log"),
                          "-o", options, "-w", "-t", "30", "start"])
            break
        except subprocess.CalledProcessError as exc:
            if "already in use" not in (root / "pg.log").read_text():
                raise RuntimeError(f"pg_ctl start failed: {exc.stderr!r}\n{(root / 'pg.log').read_text()[-2000:]}") from None
    else:
        raise RuntimeError("no free port for PostgreSQL")
    server = Postgres(f"postgresql://bgd:bgd@127.0.0.1:{port}/bgd", root / "data")
    psql = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
    try:
        subprocess.run([*psql, "-c", "CREATE ROLE bgd LOGIN PASSWORD 'bgd'", "-c", "CREATE DATABASE bgd OWNER bgd"],
                       check=True, capture_output=True, timeout=60)
        subprocess.run([str(BUILDGRID_VENV / "bin" / "bgd"), "migrate", "apply", server.url],
                       check=True, capture_output=True, timeout=120)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL cluster per xdist worker (outside pytest's root-only tmp dir)."""
    _need_buildgrid()
    require((PG_BIN / "initdb").exists(), f"needs PostgreSQL 15 in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="ukbuild-pg-"))
    root.chmod(0o755)  # the postgres user must reach the cluster below it
    try:
        server = start_postgres(root / "cluster")
        yield server
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def execution(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Server]:
    """BuildGrid with Execution + Bots on ``postgres``, one per xdist worker.

    Tests start their own workers and stop them; a stopped worker hands back
    its leases, a killed one loses its session within 5 s.
    """
    server = start_buildgrid(tmp_path_factory.mktemp("execution"), EXECUTION_CONF, database=postgres.url)
    yield server
    server.stop()


@attrs.frozen
class WorkerProcess:
    bot_id: str
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop(self.process)

    def kill(self) -> None:
        """SIGKILL the worker and the commands it runs (their own process groups), nothing else."""
        groups = {self.process.pid, *_descendants(self.process.pid)}
        for pid in sorted(groups):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait(10)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"worker never logged {text!r}:\n{self.log.read_text()[-2000:]}")

    def leases(self) -> int:
        return self.log.read_text(errors="replace").count(": exit status ")


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc), the process-group leaders among them included."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def start_worker(root: Path, url: str, bot_id: str, *args: str) -> WorkerProcess:
    """A worker process; ready once it has a bot session."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"{bot_id}-{os.urandom(4).hex()}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            ["timeout", "600", sys.executable, "-m", "ukbuild.remote.worker", "--url", url, "--bot-id", bot_id,
             "--cache-dir", str(root / "cache"), "--scratch-dir", str(root / "scratch"), "--poll-timeout", "10",
             *args],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
        )
    worker = WorkerProcess(bot_id, log, process)
    try:
        worker.wait_for(f"bot {bot_id}: session", START_TIMEOUT)
    except BaseException:
        worker.stop()
        raise
    return worker
