"""MariaDB from Debian's source package: the cross build with the fake Rumprun toolchain (a
native helper stage feeding it, pcre2/zlib/fmt packages instead of downloads, stubs, one
chosen target), and the native smoke build whose server answers a query.

Both are long and marked ``slow`` (not in the default run; ``pytest -m slow tests/recipes``).
Measured with ``nice -n 19 pytest -m slow tests/recipes/test_mariadb.py`` (-j2 builds) on the
2-core machine type while other engineers' builds and tests ran (load 4-9), 2026-11-27: the
cross test 20 min (pcre2/zlib/fmt and the native helper stage under 3 min, the cross configure
and the server's compile 17 min, bake and strip seconds), the native one 25 min; 45 min together.
The cross test alone at load 2-4: 13.5 min.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes.rumprun import FakeRumprun

from ._build import BAKE_NOTE, build, elf_type, free_port, log, recipe, sections, statuses, stop, wait_for_port
from .test_web_recipes import CC, calls, offset, recorded

pytestmark = [pytest.mark.slow, pytest.mark.realtool("make", "cmake", "c++", "patch", "readelf")]

SOURCES = ["mariadb", "pcre2", "zlib", "fmt"]


def test_cross_build_with_the_fake_toolchain(rumprun_env: FakeRumprun, tmp_path: Path) -> None:
    fake, cache = rumprun_env, tmp_path / "cache"
    start = offset(fake)
    result = build(recipe("mariadb"), ["mariadb", "mariadb-uk", "mariadb-conf"], tmp_path / "out", cache=cache,
                   sources=SOURCES)
    lines = recorded(fake, start)
    native_log, cross_log = log(result, "mariadb.native"), log(result, "mariadb")
    assert "import_executables" in native_log and CC not in native_log
    # the substitutes for downloads, and the stubs, found by the real CMake run
    assert '-- Found ZLIB: ' in cross_log and '(found version "1.2.13")' in cross_log
    assert "--   Found libpcre2-8, version 10.42" in cross_log
    assert "+ stub curses" in cross_log and "+ stub dl" in cross_log and "-- Found Curses: " in cross_log
    assert "Will download" not in cross_log
    compiles = calls(lines, "x86_64-rumprun-netbsd-g++", "-c", "sql/mysqld.cc")
    assert compiles, "mysqld.cc was not compiled by the cross C++ compiler"
    # generic-is-unix.patch: mysys' Unix-only sources are built for the Generic system, and the
    # mysqld legacy link is made the Unix way once mariadbd has linked
    assert calls(lines, CC, "-c", "mysys/my_setuser.c") and calls(lines, CC, "-c", "mysys/my_addr_resolve.c")
    assert "Creating mysqld link" in cross_log
    server = result.out_dir / "pkg/mariadb/usr/sbin/mariadbd"
    assert "REL (Relocatable file)" in elf_type(server) and BAKE_NOTE in sections(server)
    assert (result.out_dir / "pkg/mariadb/usr/share/mariadb/english/errmsg.sys").is_file()
    assert (result.out_dir / "kernel/mariadb-uk.bin").is_file() and (result.out_dir / "image/mariadb-conf.iso").is_file()
    again = build(recipe("mariadb"), ["mariadb", "mariadb-uk", "mariadb-conf"], tmp_path / "again", cache=cache, sources=SOURCES)
    assert set(statuses(again).values()) == {"cached"}, statuses(again)


def test_native_server_answers_a_query(tmp_path: Path) -> None:
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        pytest.skip("needs the mariadb client (Debian's mariadb-client)")
    result = build(recipe("mariadb", native=True), ["mariadb"], tmp_path / "out", cache=tmp_path / "cache",
                   sources=SOURCES)
    usr = result.out_dir / "pkg/mariadb/usr"
    datadir, port = tmp_path / "data", free_port()
    datadir.mkdir()
    socket = tmp_path / "mariadb.sock"
    server = subprocess.Popen(
        [str(usr / "sbin/mariadbd"), "--no-defaults", f"--datadir={datadir}", f"--lc-messages-dir={usr / 'share/mariadb'}",
         "--skip-grant-tables", "--bind-address=127.0.0.1", f"--port={port}", f"--socket={socket}", "--user=root",
         "--default-storage-engine=Aria", "--skip-name-resolve", "--log-error=" + str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, server, timeout=60)
        sql = ("CREATE DATABASE t; CREATE TABLE t.r (id INT, name VARCHAR(20)); INSERT INTO t.r VALUES (1, 'rump'); "
               "SELECT name, ENGINE FROM t.r, information_schema.TABLES WHERE TABLE_SCHEMA='t' AND TABLE_NAME='r';")
        answer = subprocess.run([client, "--no-defaults", "-h127.0.0.1", f"-P{port}", "-uroot", "-N", "-B", "-e", sql],
                                capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
        assert answer.split() == ["rump", "Aria"], answer
    finally:
        stop(server)
