"""The recipe files load, share their dependencies by key, plan their unikernels and data images,
and mistakes in recipe input are clear errors (file:line, field, hint), never tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ukbuild._project import load_project
from ukbuild.errors import ConfigError
from ukbuild.images import DATA_FORMATS
from ukbuild.model import ExternalInput, OutputInput, SourceInput

from ._build import recipe
from .conftest import RECIPES

ALL = ["zlib", "pcre2", "fmt", "nginx", "php", "mariadb"]


@pytest.mark.parametrize("name", ALL)
def test_recipes_load(name: str) -> None:
    project = recipe(name)
    assert name in project.actions
    for other in recipe(name, native=True).actions.values():
        if other.name in {"zlib", "pcre2", "nginx", "php", "mariadb"}:
            assert other.toolchain == "host", other.name


def test_included_packages_are_the_same_action_everywhere() -> None:
    """pcre2 and zlib come from their own recipe files: equal actions (so equal keys) in every user."""
    projects = {name: recipe(name) for name in ("zlib", "pcre2", "nginx", "php", "mariadb")}
    for shared in ("zlib", "pcre2"):
        actions = [p.actions[shared] for p in projects.values() if shared in p.actions]
        assert len(actions) >= 3 and all(a == actions[0] for a in actions), shared
    nginx = projects["nginx"].actions["nginx"]
    assert {i.label for i in nginx.inputs if isinstance(i, OutputInput)} == {
        "out:pcre2:pkg/pcre2@sysroot", "out:zlib:pkg/zlib@sysroot"}
    # the included recipe's patch path is rebased onto the including project, its digest keys it
    mariadb = projects["mariadb"].actions["mariadb"]
    src = next(i for i in mariadb.inputs if isinstance(i, SourceInput))
    assert src.source.patches == ("patches/openat-fd.patch", "patches/generic-is-unix.patch")  # type: ignore[union-attr]


def test_recipe_features_reach_the_actions() -> None:
    mariadb = recipe("mariadb")
    action = mariadb.actions["mariadb"]
    env = dict(action.env)
    assert env["HAVE_SYSTEM_LIBFMT"] == "1" and env["UKBUILD_CMAKE_ANSWERS"] == "${UKBUILD_WORK}/answers.cmake"
    assert env["UKBUILD_TARGETS"] == "mariadbd" and env["NATIVE"] == "${UKBUILD_WORK}/native"
    assert "-L${UKBUILD_WORK}/stubs" in env["LDFLAGS"]
    assert 'set(HAVE_SYSTEM_LIBFMT "1" CACHE STRING' in action.argv[2]
    stubs = sorted(i.label for i in action.inputs if isinstance(i, ExternalInput))
    assert stubs == ["ext:stub:mariadb/curses.c@stubs/curses.c", "ext:stub:mariadb/curses.h@stubs/curses.h",
                     "ext:stub:mariadb/dl.c@stubs/dl.c"]
    assert OutputInput("mariadb.native", "native", "pkg/mariadb.native") in action.inputs
    native = mariadb.actions["mariadb.native"]
    assert native.toolchain == "native" and native.step == "core/package-native"
    assert "HAVE_SYSTEM_LIBFMT" not in dict(recipe("mariadb", native=True).actions["mariadb"].env)


def test_unikernels_and_data_images_are_planned() -> None:
    nginx = recipe("nginx")
    assert nginx.unikernels["nginx-uk"].backend == "rumprun"
    assert nginx.images["nginx-data"].format == "iso9660" and nginx.images["nginx-data"].unikernel is None
    assert nginx.actions["nginx-data"].toolchain == "ukbuild-emit-iso9660"
    php = recipe("php")
    assert set(php.unikernels) == {"php-uk", "php-cli-uk"} and php.images["php-app"].format in DATA_FORMATS
    opts = php.unikernels["php-uk"].options
    assert opts["programs"] == [{"package": "php", "path": "usr/bin/php-cgi", "args": ["-b", "9000"]}]
    assert opts["env"] == {"PHP_FCGI_MAX_REQUESTS": "0", "PHP_FCGI_CHILDREN": "0"}
    assert recipe("mariadb").unikernels["mariadb-uk"].options["blk"][0]["mountpoint"] == "/data"


def write(root: Path, text: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ukbuild.toml").write_text(text)
    for name, content in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


PKG = '[project]\nname = "p"\n{extra}\n[package.p]\nsource = {{ path = "src" }}\nsteps = ["true"]\n{fields}\n'


@pytest.mark.parametrize(("extra", "fields", "files", "expected"), [
    ('include = ["../nowhere"]', "", {}, "project.include: '../nowhere': no recipe file there"),
    ("", 'configure_answers = { "bad-name" = "1" }', {}, "package.p.configure_answers.bad-name: not a variable name"),
    ("", "configure_answers = { a = 1 }", {}, "package.p.configure_answers.a: expected a string"),
    ("", 'stubs = ["stubs/x.c"]', {}, "package.p.stubs: stub 'stubs/x.c' not found"),
    ("", 'stubs = ["stubs/x.txt"]', {"stubs/x.txt": ""}, "package.p.stubs: 'stubs/x.txt' is not a C or C++ source"),
    ("", 'native = { steps = ["true"], toolchain = "nope" }', {}, "package.p.native.toolchain: no toolchain named 'nope'"),
    ("", 'native = { step = ["true"] }', {}, "package.p.native.step: unknown field"),
    ("", 'depends = ["zlib"]', {}, "package.p.depends: no package named 'zlib'"),
    ("", "targets = 3", {}, "package.p.targets: expected a list of strings"),
])  # fmt: skip
def test_recipe_errors_are_clear(tmp_path: Path, extra: str, fields: str, files: dict[str, str], expected: str) -> None:
    root = write(tmp_path / "p", PKG.format(extra=extra, fields=fields), {"src/x": "", **files})
    with pytest.raises(ConfigError) as excinfo:
        load_project(root)
    message = excinfo.value.message
    assert message.startswith(f"{root / 'ukbuild.toml'}:") and expected in message, message
    assert excinfo.value.hint


def test_include_conflicts_are_clear(tmp_path: Path) -> None:
    write(tmp_path / "a", '[project]\nname = "a"\n[package.zlib]\nsource = { path = "s" }\nsteps = ["true"]\n', {"s/x": ""})
    root = write(tmp_path / "b", '[project]\nname = "b"\ninclude = ["../a"]\n[package.zlib]\nsource = { path = "s" }\n'
                 'steps = ["true"]\n', {"s/x": ""})  # fmt: skip
    with pytest.raises(ConfigError, match=r"package\.zlib: already defined in .*a/ukbuild.toml"):
        load_project(root)
    write(tmp_path / "c", '[project]\nname = "c"\n[toolchain.host]\ntools = ["cc"]\n[toolchain.x]\ntools = ["cc"]\n')
    root = write(tmp_path / "d", '[project]\nname = "d"\ninclude = ["../c"]\n[toolchain.x]\ntools = ["sh"]\n')
    with pytest.raises(ConfigError, match=r"toolchain\.x: differs from the toolchain of the same name"):
        load_project(root)


def test_include_cycles_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "a", '[project]\nname = "a"\ninclude = ["../b"]\n')
    root = write(tmp_path / "b", '[project]\nname = "b"\ninclude = ["../a"]\n')
    with pytest.raises(ConfigError) as excinfo:
        load_project(root)
    assert excinfo.value.reason == "include-cycle" and "a/ukbuild.toml:3: project.include" in excinfo.value.message


def test_included_files_use_their_own_paths(tmp_path: Path) -> None:
    lib = write(tmp_path / "lib", '[project]\nname = "lib"\n[package.lib]\nsource = { path = "src", patches = ["p.patch"] }\n'
                'steps = ["true"]\nstubs = ["s.c"]\n', {"src/x": "", "p.patch": "", "s.c": ""})  # fmt: skip
    app = write(tmp_path / "app", '[project]\nname = "app"\ninclude = ["../lib", "../lib/ukbuild.toml"]\n'
                '[package.app]\nsource = { path = "src" }\nsteps = ["true"]\ndepends = ["lib"]\n', {"src/y": ""})  # fmt: skip
    project = load_project(app)
    action = project.actions["lib"]
    src = next(i for i in action.inputs if isinstance(i, SourceInput))
    assert src.source.path == "../lib/src" and src.source.patches == ("../lib/p.patch",)  # type: ignore[union-attr]
    stub = next(i for i in action.inputs if isinstance(i, ExternalInput))
    assert stub.path == str(lib / "s.c") and stub.label == "ext:stub:lib/s.c@stubs/s.c"
    assert str(lib / "ukbuild.toml") in project.files


def test_data_image_tables_check_their_paths(tmp_path: Path) -> None:
    root = write(tmp_path / "p", '[project]\nname = "p"\n[image.www]\nformat = "ext2"\ntree = "www/"\n')
    with pytest.raises(ConfigError, match=r"ukbuild.toml:5: image\.www\.tree: 'www/' is not a directory of the project"):
        load_project(root)
    root = write(tmp_path / "q", '[project]\nname = "q"\n[image.www]\nformat = "iso9660"\nfiles = { "a" = "b.txt" }\n')
    with pytest.raises(ConfigError, match=r"image\.www\.files\.a: 'b.txt' is not a file of the project"):
        load_project(root)
    (root / "b.txt").write_text("b\n")
    project = load_project(root)
    assert project.images["www"].output == "image/www.iso" and "ukbuild-emit-iso9660" in project.toolchains


def test_recipes_directory_layout() -> None:
    assert sorted(p.name for p in RECIPES.iterdir() if (p / "ukbuild.toml").is_file()) == sorted(ALL)
