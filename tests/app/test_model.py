"""App files: what loads, and every mistake as a clear error naming the file, line and field."""

from __future__ import annotations

import pytest

from ukbuild.app import is_app_file, load_app, plan_services
from ukbuild.app.network import plan
from ukbuild.errors import ConfigError

from .conftest import EXAMPLE, AppDir

BASE = '[app]\nname = "demo"\n\n[service.web]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\n'


def load_error(app_dir: AppDir, text: str) -> ConfigError:
    app_dir.write(text)
    with pytest.raises(ConfigError) as err:
        plan_services(load_app(app_dir.file))
    return err.value


def test_defaults_addresses_and_order(app_dir: AppDir) -> None:
    app_dir.write(BASE + '\n[service.db]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\nexpose = [3306]\n'
                  '\n[service.api]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\nlinks = ["db"]\naddress = "10.77.0.50"\n')
    app = load_app(app_dir.file)
    assert [s.address for s in app.services.values()] == ["10.77.0.10", "10.77.0.11", "10.77.0.50"]
    assert app.order() == ["web", "db", "api"]
    assert app.image_ref("db") == "localhost/ukbuild/demo-db:latest"
    assert is_app_file(app_dir.file) and not is_app_file(EXAMPLE / "ukbuild.toml")
    endpoints = plan(app)
    assert endpoints["web"].mac.startswith("52:54:00:") and endpoints["web"].mac != endpoints["db"].mac
    assert endpoints["web"].slirp is not None and endpoints["web"].slirp.host == "10.77.0.1"


@pytest.mark.parametrize(
    ("extra", "where", "words"),
    [
        ('colour = "red"\n', "service.web.colour", "unknown field"),
        ('address = "10.99.0.5"\n', "service.web.address", "not usable in the app network 10.77.0.0/24"),
        ('address = "10.77.0.1"\n', "service.web.address", "not usable in the app network"),
        ('ports = ["80"]\n', "service.web.ports", "HOST:GUEST"),
        ('ports = ["8080:70000"]\n', "service.web.ports", "not a port number"),
        ('links = ["nope"]\n', "service.web.links", "no service named 'nope'"),
        ('links = ["web"]\n', "service.web.links", "cannot link to itself"),
        ('container = "docker"\n', "service.web.container", "unknown container kind"),
        ('container = "urunc"\n', "service.web.container", "only from Solo5 hvt/spt kernels"),
        ('volumes = [{ image = "nope", mount = "/data" }]\n', "service.web.volumes", "neither a [volume]"),
        ('volumes = [{ image = "www", mount = "data" }]\n', "service.web.volumes", "not an absolute path"),
        ('memory = 4\n', "service.web.memory", "not a memory size"),
        ('unikernel = "nope"\n', "service.web.unikernel", "has no unikernel 'nope'"),
    ],
)
def test_service_mistakes(app_dir: AppDir, extra: str, where: str, words: str) -> None:
    text = BASE.replace('unikernel = "hello"\n', "") if extra.startswith("unikernel") else BASE
    error = load_error(app_dir, text + extra)
    assert f"{app_dir.file}:" in error.message and where in error.message and words in error.message
    assert error.hint


def test_missing_recipe_names_it(app_dir: AppDir) -> None:
    error = load_error(app_dir, BASE.replace('"@EXAMPLE@"', '"../rumprun/nginx"'))
    assert error.reason == "missing-recipe"
    assert "service.web.recipe" in error.message and "'../rumprun/nginx' not found" in error.message
    assert "app.toml:5:" in error.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[app]\nname = "demo"\n', "the app has no services"),
        ('[app]\nname = "Demo!"\n', "app.name: 'Demo!' is not a valid name"),
        ('[app]\nname = "d"\nnetwork = "8.8.8.0/24"\n', "must be a private network"),
        ('[app]\nname = "d"\n[services.x]\n', "services: unknown table"),
        ('[app]\nname = "d"\n[service.x]\nkernel = "missing.bin"\nguest = "linux"\n', "'missing.bin' not found"),
        ('[app]\nname = "d"\n[service.x]\ncmdline = "a"\n', "needs a recipe (and unikernel) or a prebuilt kernel"),
        ('[app]\nname = "d"\n[service.x]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\n[volume.v]\nformat = "zip"\n',
         "volume.v.format: expected a data image format"),
        ('[app]\nname = "d"\n[service.x]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\n'
         '[volume.v]\nformat = "ext2"\nmariadb = { seed = "none.sql" }\n', "seed SQL 'none.sql' not found"),
        ('[app]\nname = "d"\n[service.x]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\n'
         '[volume.v]\nformat = "ext2"\nmariadb = { seed = [] }\n', "expected an SQL file or a list"),
        ('[app\nname = "d"\n', "TOML syntax"),
    ],
)
def test_app_mistakes(app_dir: AppDir, text: str, words: str) -> None:
    error = load_error(app_dir, text)
    assert str(app_dir.file) in error.message and words in error.message


def test_links_may_not_cycle(app_dir: AppDir) -> None:
    text = BASE + 'links = ["db"]\nexpose = [80]\n\n[service.db]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\n' \
        'expose = [5432]\nlinks = ["web"]\n'
    error = load_error(app_dir, text)
    assert "links form a cycle" in error.message and "web -> db -> web" in error.message


def test_published_ports_and_addresses_are_unique(app_dir: AppDir) -> None:
    two = BASE + 'ports = ["8080:80"]\n\n[service.db]\nrecipe = "@EXAMPLE@"\nunikernel = "hello"\n'
    assert "host port 8080 is already published by service web" in load_error(
        app_dir, two + 'ports = ["8080:81"]\n').message
    assert "10.77.0.10 is already the address of service web" in load_error(
        app_dir, two + 'address = "10.77.0.10"\n').message
