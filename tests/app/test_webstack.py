"""recipes/webstack: its volumes (nginx config and web root, the PHP application, MariaDB's data
directory bootstrapped with the host's server tools) built through the app, and the data directory
serving the seed row to a real MariaDB server on 127.0.0.1.

Until the Rumprun recipes land, the services are swapped for the Multiboot example so that the
app's own graph (the volumes) is what is tested here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ukbuild.app import load_app

from .conftest import EXAMPLE, WEBSTACK, AppDir, free_port


@pytest.fixture
def webstack(app_dir: AppDir) -> AppDir:
    shutil.copytree(WEBSTACK, app_dir.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("out"))
    text = re.sub(r'recipe = "\.\./rumprun/[a-z]+"\nunikernel = "[a-z-]+"\n',
                  f'recipe = "{EXAMPLE}"\nunikernel = "hello"\n', app_dir.file.read_text())
    app_dir.file.write_text(text)
    return app_dir


def test_webstack_app_shape() -> None:
    """The real app file: three services wired web → php → db, the web port published."""
    text = (WEBSTACK / "app.toml").read_text()
    assert 'recipe = "../rumprun/nginx"\nunikernel = "nginx-uk"' in text and 'unikernel = "php-uk"' in text
    conf = (WEBSTACK / "nginx" / "conf" / "nginx.conf").read_text()
    assert "fastcgi_pass 10.77.0.11:9000;" in conf and "master_process off;" in conf
    assert "10.77.0.12" in (WEBSTACK / "php" / "greeting.php").read_text()


def debugfs_cat(image: Path, path: str) -> str:
    proc = subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True, text=True, timeout=30)
    return proc.stdout


@pytest.mark.realtool("debugfs", "mke2fs")
def test_web_and_php_volumes(webstack: AppDir) -> None:
    app = load_app(webstack.file)
    assert [s.address for s in app.services.values()] == ["10.77.0.12", "10.77.0.11", "10.77.0.10"]
    assert app.order() == ["db", "php", "web"]
    result = webstack.build()
    assert "fastcgi_pass" in debugfs_cat(result.volumes["web-root"], "/conf/nginx.conf")
    assert "<h1>" in debugfs_cat(result.volumes["web-root"], "/www/index.html")
    assert "mysqli" in debugfs_cat(result.volumes["php-app"], "/greeting.php")


def start_mariadb(datadir: Path, port: int, run: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={datadir}", "--user=root", "--innodb=OFF",
         "--bind-address=127.0.0.1", f"--port={port}", f"--socket={run / 'sock'}", f"--pid-file={run / 'pid'}",
         f"--log-error={run / 'err.log'}", "--skip-log-bin", "--default-storage-engine=Aria"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.realtool("mariadb-install-db", "mariadbd", "mariadb", "debugfs")
def test_db_volume_serves_the_seed_row(webstack: AppDir) -> None:
    result = webstack.build()
    image = result.volumes["db-data"]
    run = Path(tempfile.mkdtemp(prefix="ukb-mdb-", dir="/tmp"))
    server = None
    try:
        datadir = run / "data"
        datadir.mkdir()
        dump = subprocess.run(["debugfs", "-R", f"rdump / {datadir}", str(image)], capture_output=True, text=True,
                              timeout=60)
        assert "datadir = /data/db" in (datadir / "my.cnf").read_text()
        datadir = datadir / "db"
        assert (datadir / "webstack" / "greeting.frm").is_file(), dump.stderr
        assert (datadir / "mysql" / "global_priv.MAD").is_file() and not (datadir / "ibdata1").exists()
        port = free_port()
        server = start_mariadb(datadir, port, run)
        query = ["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(port), "-u", "webapp", "-pwebapp",
                 "--batch", "--skip-column-names", "-e", "SELECT message FROM webstack.greeting WHERE id = 1"]
        answer = None
        for _ in range(100):
            answer = subprocess.run(query, capture_output=True, text=True, timeout=30)
            if answer.returncode == 0 or server.poll() is not None:
                break
            time.sleep(0.2)
        log = (run / "err.log").read_text(errors="replace") if (run / "err.log").exists() else ""
        assert answer is not None and answer.returncode == 0, answer.stderr if answer else "" + log
        assert answer.stdout.strip() == "Hello from MariaDB, through PHP and nginx, each in its own unikernel"
        engine = subprocess.run([*query[:-1], "SELECT engine FROM information_schema.tables WHERE "
                                 "table_schema = 'webstack'"], capture_output=True, text=True, timeout=30)
        assert engine.stdout.strip() == "Aria"
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(run, ignore_errors=True)


@pytest.mark.realtool("mariadb-install-db", "mariadbd")
def test_db_bootstrap_is_cached_and_as_reproducible_as_mariadb_allows(webstack: AppDir, tmp_path: Path) -> None:
    """A second build takes the cached data dir; a cold one elsewhere has the same files (MariaDB writes
    creation times and table UUIDs into them, so not the same bytes: see docs/apps.md)."""
    first = webstack.build()
    again = webstack.build("out-again")
    assert "db-data.datadir" not in {n for n, o in again.results["app"].outcomes.items() if o.status == "executed"}
    assert again.volumes["db-data"].read_bytes() == first.volumes["db-data"].read_bytes()
    webstack.cache = tmp_path / "cold"
    cold = webstack.build("out-cold")
    assert cold.volumes["db-data"].stat().st_size == first.volumes["db-data"].stat().st_size


@pytest.mark.realtool("mariadb-install-db", "mariadbd")
def test_bad_seed_sql_fails_the_bootstrap_with_mariadb_s_words(webstack: AppDir) -> None:
    (webstack.root / "db" / "seed.sql").write_text("INSERT INTO webstack.nowhere VALUES (1);\n")
    from ukbuild.errors import UkbuildError

    with pytest.raises(UkbuildError) as err:
        webstack.build()
    text = err.value.message + (err.value.detail or "")
    assert "db-data.datadir" in text and "Table 'webstack.nowhere' doesn't exist" in text


@pytest.mark.realtool("mariadb-install-db", "mariadbd")
def test_php_change_rebuilds_only_php_app_and_its_image(webstack: AppDir) -> None:
    """The web stack's acceptance line: a second build is all cache hits; changing the PHP application
    rebuilds its volume and the php service's image, nothing else."""
    webstack.build()
    assert webstack.build().count("executed") == 0
    page = webstack.root / "php" / "greeting.php"
    page.write_text(page.read_text().replace("greeting {$row['id']}", "row {$row['id']}"))
    again = webstack.build()
    ran = {(scope, n) for scope, r in again.results.items() for n, o in r.outcomes.items()  # type: ignore[attr-defined]
           if o.status == "executed"}
    assert ran == {("app", "php-app"), ("app", "php.launcher")}
