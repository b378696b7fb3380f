"""nginx and PHP (with pcre2 and zlib) built from Debian's source packages: cross with the fake
Rumprun toolchain (real configure and make under the cross environment, asserted from the
compiler calls the fake records and from the build logs), and natively with the host compiler,
where the results must work: nginx serves a file, ``php -r`` runs, and nginx passes a PHP page
to ``php-cgi -b`` over FastCGI.

Measured on the 2-core machine type while other test suites and builds ran (load 7-9): the
cross test 591 s, the native one 561 s (nginx about 1.5 min of each, PHP the rest); they run
on the two xdist workers side by side.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.rumprun import FakeRumprun

from ._build import BAKE_NOTE, build, elf_type, free_port, log, recipe, sections, statuses, stop, wait_for_port

pytestmark = pytest.mark.realtool("make", "patch", "readelf", "xorriso")

CC = "x86_64-rumprun-netbsd-gcc"


def recorded(fake: FakeRumprun, since: int) -> list[str]:
    """Compiler calls the fake recorded after byte offset ``since``."""
    with fake.invocations.open("rb") as f:
        f.seek(since)
        return f.read().decode(errors="replace").splitlines()


def offset(fake: FakeRumprun) -> int:
    return fake.invocations.stat().st_size if fake.invocations.exists() else 0


def calls(lines: list[str], *words: str) -> list[str]:
    return [line for line in lines if all(w in line.split() or w in line for w in words)]


def test_cross_builds_with_the_fake_toolchain(rumprun_env: FakeRumprun, tmp_path: Path) -> None:
    fake, cache = rumprun_env, tmp_path / "cache"
    start = offset(fake)
    nginx = build(recipe("nginx"), ["nginx", "nginx-uk", "nginx-data"], tmp_path / "nginx", cache=cache,
                  sources=["nginx", "pcre2", "zlib"])
    assert statuses(nginx) == {"zlib": "executed", "pcre2": "executed", "nginx": "executed", "nginx-data": "executed",
                               "nginx-uk.bake": "executed", "nginx-uk": "executed"}  # fmt: skip
    lines = recorded(fake, start)
    # zlib: its own configure picked the cross tools from the environment
    assert "Building static library libz.a version 1.2.13 with x86_64-rumprun-netbsd-gcc." in log(nginx, "zlib")
    assert calls(lines, CC, "-c", "adler32.c", "-ffile-prefix-map")
    # pcre2: autoconf with --host
    pcre2_log = log(nginx, "pcre2")
    assert "checking host system type... x86_64-rumprun-netbsd" in pcre2_log
    assert "checking whether we are cross compiling... yes" in pcre2_log
    assert calls(lines, CC, "src/pcre2_compile.c")
    # nginx: the project's patch applied to Debian's tree and answered the run-tests
    nginx_log = log(nginx, "nginx")
    assert "building for NetBSD:7.99.34:amd64" in nginx_log
    assert "checking for system byte ordering ... little endian (compiler)" in nginx_log
    assert "checking for int size ... 4 bytes" in nginx_log
    assert "found (cross build: linked, not run)" in nginx_log
    compiles = calls(lines, CC, "-c", "src/core/nginx.c")
    assert compiles and all("-I../sysroot/usr/include" in c and "-idirafter" in c for c in compiles)
    links = calls(lines, CC, "-o", "objs/nginx")
    assert links and "-lpcre2-8" in links[-1] and "-lz" in links[-1] and "-L../sysroot/usr/lib" in links[-1]
    program = nginx.out_dir / "pkg/nginx/usr/sbin/nginx"
    assert "REL (Relocatable file)" in elf_type(program) and BAKE_NOTE in sections(program)
    assert (nginx.out_dir / "kernel/nginx-uk.bin").stat().st_size > 1 << 20
    listing = subprocess.run(["xorriso", "-no_rc", "-indev", str(nginx.out_dir / "image/nginx-data.iso"), "-find", "/"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "'/conf/nginx.conf'" in listing and "'/www/index.html'" in listing

    # PHP: the same pcre2 and zlib (same keys: from the cache, not built again)
    start = offset(fake)
    php = build(recipe("php"), ["php", "php-uk", "php-cli-uk", "php-app"], tmp_path / "php", cache=cache,
                sources=["php", "pcre2", "zlib"])
    assert statuses(php)["pcre2"] == "cached" and statuses(php)["zlib"] == "cached"
    assert statuses(php)["php"] == "executed"
    lines = recorded(fake, start)
    assert not [line for line in lines if "adler32.c" in line.split() or "src/pcre2_compile.c" in line.split()]
    php_log = log(php, "php")
    assert "checking host system type... x86_64-rumprun-netbsd" in php_log
    assert "checking for sigsetjmp... (cached) yes" in php_log  # the toolchain's answer
    assert calls(lines, CC, "-c", "main/main.c") and calls(lines, CC, "-o", "sapi/cli/php")
    assert calls(lines, CC, "-o", "sapi/cgi/php-cgi")
    for name in ("php", "php-cgi"):
        program = php.out_dir / "pkg/php/usr/bin" / name
        assert "REL (Relocatable file)" in elf_type(program) and BAKE_NOTE in sections(program)
    assert (php.out_dir / "kernel/php-uk.bin").is_file() and (php.out_dir / "image/php-app.iso").is_file()

    # a second build, elsewhere: all cache hits
    for name, targets, sources in (("nginx", ["nginx-uk", "nginx-data"], ["nginx", "pcre2", "zlib"]),
                                   ("php", ["php-uk", "php-cli-uk", "php-app"], ["php", "pcre2", "zlib"])):
        again = build(recipe(name), targets, tmp_path / f"{name}-again", cache=cache, sources=sources)
        assert set(statuses(again).values()) == {"cached"}, statuses(again)


NGINX_CONF = """\
daemon off;
master_process off;
error_log stderr info;
pid {tmp}/nginx.pid;
events {{ worker_connections 16; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location ~ \\.php$ {{
            include {fastcgi_params};
            fastcgi_param SCRIPT_FILENAME {app}$fastcgi_script_name;
            fastcgi_pass 127.0.0.1:{php_port};
        }}
    }}
}}
"""


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 - loopback only
        return response.read().decode()


def test_native_builds_work(tmp_path: Path) -> None:
    """The recipes' steps with the host compiler and no triple: the programs run and serve."""
    cache = tmp_path / "cache"
    nginx = build(recipe("nginx", native=True), ["nginx"], tmp_path / "nginx", cache=cache,
                  sources=["nginx", "pcre2", "zlib"])
    php = build(recipe("php", native=True), ["php"], tmp_path / "php", cache=cache, sources=["php", "pcre2", "zlib"])
    assert statuses(php) == {"pcre2": "cached", "zlib": "cached", "php": "executed"}
    assert "building for" not in log(nginx, "nginx") and "x86_64-rumprun-netbsd" not in log(php, "php")
    php_bin = php.out_dir / "pkg/php/usr/bin/php"
    run = subprocess.run([str(php_bin), "-n", "-r", "echo 1+1;"], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout == "2"
    modules = subprocess.run([str(php_bin), "-n", "-m"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert {"mysqli", "pdo_mysql", "zlib", "pcre"} <= set(modules.split())

    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_text("hello from nginx\n")
    port, php_port = free_port(), free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, port=port, php_port=php_port, app=Path(__file__).parents[2]
                                      / "recipes/rumprun/php/app",
                                      fastcgi_params=Path(__file__).parents[2] / "recipes/rumprun/nginx/data/conf/fastcgi_params"))  # fmt: skip
    with (tmp_path / "nginx.log").open("wb") as errors:
        server = subprocess.Popen([str(nginx.out_dir / "pkg/nginx/usr/sbin/nginx"), "-p", str(tmp_path), "-e", "stderr",
                                   "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "PHP_FCGI_MAX_REQUESTS": "0", "PHP_FCGI_CHILDREN": "0"}
    cgi = subprocess.Popen([str(php.out_dir / "pkg/php/usr/bin/php-cgi"), "-n", "-b", f"127.0.0.1:{php_port}"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, server)
        assert get(f"http://127.0.0.1:{port}/hello.txt") == "hello from nginx\n"
        wait_for_port(php_port, cgi)
        page = get(f"http://127.0.0.1:{port}/index.php")
        assert page.startswith("Hello from PHP 8.2.32") and "1 + 1 = 2" in page, page
    finally:
        stop(server)
        stop(cgi)
