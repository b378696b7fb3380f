"""MirageOS unikernels built with the fake toolchain: the actions, caching, sharing, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from backends.mirage.tests.helpers import BACKENDS, Project, keys, lock_text, statuses

from ukbuild import api
from ukbuild.errors import BuildError, ConfigError, RunError

Entries = dict[str, tuple[str, str, str]]

HELLO_HVT = '[unikernel.hello]\ntoolchain = "mirage"\ndir = "hello"\ntarget = "hvt"\n'


def unikernel(name: str, directory: str, target: str, extra: str = "") -> str:
    return f'[unikernel.{name}]\ntoolchain = "mirage"\ndir = "{directory}"\ntarget = "{target}"\n{extra}\n'


def commit_lock(uk_dir: Path, uk: str, dirs: list[tuple[str, str, str]]) -> None:
    (uk_dir / "mirage").mkdir(exist_ok=True)
    (uk_dir / "mirage" / f"{uk}.opam.locked").write_text(lock_text(uk, dirs))


class TestHello:
    def test_configure_lock_pull_build_verify_are_separate_actions(self, project: Project) -> None:
        """Without a committed lock file: configure → lock → pull → build → verify, then all cache hits."""
        project.copy("hello")
        project.write(HELLO_HVT, ["hello"])
        first = project.build()
        assert first.ok, first.errors
        assert statuses(first) == dict.fromkeys(
            ["hello.configure", "hello.lock", "hello.pull", "hello.build", "hello"], "executed")
        kernel = first.out_dir / "hello" / "dist" / "hello.hvt"
        assert kernel.read_bytes()[:4] == b"\x7fELF"
        again = project.build(out="out2")
        assert set(statuses(again).values()) == {"cached"}
        assert (again.out_dir / "hello/dist/hello.hvt").read_bytes() == kernel.read_bytes()

    def test_lock_and_pull_are_network_steps(self, project: Project) -> None:
        """The lock and pull actions are marked as fetching; configure and build are not."""
        project.copy("hello")
        project.write(HELLO_HVT, ["hello"])
        actions = project.load().actions
        network = {n for n, a in actions.items() if a.network}
        assert network == {"hello.lock", "hello.pull"}
        assert actions["hello.build"].argv == ("dune", "build", "--profile", "release", "--root", ".", "./dist")

    def test_runs_under_the_fake_tender(self, project: Project) -> None:
        """`ukbuild run` starts solo5-hvt with the unikernel; the guest's status is the result."""
        project.copy("hello")
        project.write(HELLO_HVT, ["hello"])
        options = api.BuildOptions(cache_dir=project.cache, out_dir=project.root / "out")
        result = api.run(project.load(), "hello", (), options, backends=BACKENDS)
        console = result.console.decode()
        assert result.status == 0
        assert "Solo5: Bindings version v0.12.1-7-g469c1a8" in console
        assert "[INFO] [application] hello" in console
        assert console.endswith("Solo5: solo5_exit(0) called\n")

    def test_unix_target_runs_directly(self, project: Project, entries: Entries) -> None:
        """For unix the build is the unikernel's own action, and the binary runs as a process."""
        project.copy("hello")
        commit_lock(project.root / "hello", "hello-unix", [entries["duration"], entries["lwt"], entries["mirage-unix"]])
        project.write(unikernel("hello", "hello", "unix"), ["hello"])
        assert set(project.load().actions) == {"hello.configure", "hello.pull[duration]", "hello.pull[lwt]",
                                               "hello.pull[mirage-unix]", "hello"}
        options = api.BuildOptions(cache_dir=project.cache, out_dir=project.root / "out")
        result = api.run(project.load(), "hello", (), options, backends=BACKENDS)
        assert (result.status, result.console) == (0, b"[INFO] [application] hello\n")


class TestDuniverse:
    def test_shared_directories_are_pulled_once(self, project: Project, entries: Entries) -> None:
        """Two unikernels whose locks share 3 of 4 duniverse directories: the second pulls only its own."""
        project.copy("hello")
        project.copy("static_website", "www")
        common = [entries["duration"], entries["lwt"], entries["mirage-solo5"]]
        commit_lock(project.root / "hello", "hello-hvt", [*common, entries["fmt"]])
        commit_lock(project.root / "www", "www-hvt", [*common, entries["uri"]])
        www = unikernel("www", "www", "hvt", 'devices = { service = "net" }')
        project.write(HELLO_HVT + "\n" + www)
        assert project.build("hello").ok
        second = project.build("www")
        pulls = {n: s for n, s in statuses(second).items() if ".pull[" in n}
        assert pulls == {"www.pull[duration]": "cached", "www.pull[lwt]": "cached",
                         "www.pull[mirage-solo5]": "cached", "www.pull[uri]": "executed"}

    def test_changing_only_the_target_reuses_the_duniverse(self, project: Project, entries: Entries) -> None:
        """hvt → virtio with the same lock entries: configure, build and verify run; no pull does."""
        project.copy("hello")
        dirs = [entries["duration"], entries["lwt"], entries["mirage-solo5"]]
        commit_lock(project.root / "hello", "hello-hvt", dirs)
        commit_lock(project.root / "hello", "hello-virtio", dirs)
        project.write(HELLO_HVT, ["hello"])
        assert project.build().ok
        project.write(unikernel("hello", "hello", "virtio"), ["hello"])
        result = project.build()
        assert result.ok, result.errors
        assert {n for n, s in statuses(result).items() if s == "executed"} == {
            "hello.configure", "hello.build", "hello"}
        assert (result.out_dir / "hello/dist/hello.virtio").is_file()

    def test_a_wrong_hash_fails_the_pull(self, project: Project, entries: Entries) -> None:
        """opam monorepo pull checks the lock's sha256: the pull fails, naming the directory."""
        project.copy("hello")
        url, d, _ = entries["duration"]
        commit_lock(project.root / "hello", "hello-hvt", [(url, d, "sha256=" + "0" * 64), entries["lwt"]])
        project.write(HELLO_HVT, ["hello"])
        result = project.build()
        assert statuses(result)["hello.pull[duration]"] == "failed"
        assert "Checksum mismatch" in (result.errors[0].detail or "")


class TestKeys:
    @pytest.fixture
    def built(self, project: Project, entries: Entries) -> tuple[Project, dict[str, str]]:
        project.copy("hello")
        commit_lock(project.root / "hello", "hello-hvt",
                    [entries["duration"], entries["lwt"], entries["mirage-solo5"]])
        project.write(HELLO_HVT, ["hello"])
        result = project.build()
        assert result.ok, result.errors
        return project, keys(result)

    def changed(self, project: Project, before: dict[str, str]) -> set[str]:
        after = project.build()
        assert after.ok, after.errors
        return {n for n, k in keys(after).items() if before.get(n) != k}

    def test_config_ml(self, built: tuple[Project, dict[str, str]]) -> None:
        """A comment in config.ml re-keys configure and build; the same binary keeps verify's key."""
        project, before = built
        with (project.root / "hello/config.ml").open("a") as f:
            f.write("(* a comment *)\n")
        assert self.changed(project, before) == {"hello.configure", "hello.build"}

    def test_unikernel_source(self, built: tuple[Project, dict[str, str]]) -> None:
        """A module's change re-keys only the build (configure reads config.ml alone) — and verify."""
        project, before = built
        path = project.root / "hello/unikernel.ml"
        path.write_text(path.read_text().replace('"hello"', '"hello again"'))
        assert self.changed(project, before) == {"hello.build", "hello"}

    def test_lock_file(self, built: tuple[Project, dict[str, str]], entries: Entries) -> None:
        """A new lock entry adds one pull and re-keys the build; the other pulls keep their keys."""
        project, before = built
        commit_lock(project.root / "hello", "hello-hvt",
                    [entries["duration"], entries["fmt"], entries["lwt"], entries["mirage-solo5"]])
        assert self.changed(project, before) == {"hello.pull[fmt]", "hello.build"}

    def test_generated_files_in_the_source_dir_change_nothing(self, built: tuple[Project, dict[str, str]]) -> None:
        """_build/, dist/, duniverse/ and the generated Makefile/dune files never enter a key."""
        project, before = built
        uk = project.root / "hello"
        for rel in ("_build/default/x.ml", "dist/hello.hvt", "duniverse/lwt/x", "Makefile", "dune.build",
                    "mirage/main.ml"):
            (uk / rel).parent.mkdir(parents=True, exist_ok=True)
            (uk / rel).write_text("edited by hand\n")
        assert self.changed(project, before) == set()


class TestErrors:
    def test_failing_configure_names_the_step_and_caches_nothing(self, project: Project) -> None:
        """A syntax error in config.ml fails hello.configure with dune's message; it fails again next time."""
        uk = project.copy("hello")
        (uk / "config.ml").write_text((uk / "config.ml").read_text().replace("[ main ]", "[ main "))
        project.write(HELLO_HVT, ["hello"])
        for _ in range(2):
            result = project.build()
            assert statuses(result)["hello.configure"] == "failed"
            error = result.errors[0]
            assert isinstance(error, BuildError)
            assert str(error).startswith("hello.configure: command failed")
            assert "Syntax error" in (error.detail or "")
            assert statuses(result)["hello"] == "skipped"

    def test_build_without_the_dist_file(self, project: Project, entries: Entries) -> None:
        """A name that config.ml does not register: dune writes dist/hello.hvt, not dist/other.hvt."""
        commit_lock(project.copy("hello"), "other-hvt", [entries["duration"], entries["lwt"], entries["mirage-solo5"]])
        project.write(HELLO_HVT + 'name = "other"\n', ["hello"])
        result = project.build()
        assert statuses(result)["hello.build"] == "failed"
        error = result.errors[0]
        assert "hello.build: hello/dist/other.hvt: the build wrote no dist/other.hvt" in str(error)
        assert "hello.hvt" in str(error)
        assert error.hint and 'register "NAME"' in error.hint
        assert statuses(project.build())["hello.build"] == "failed"

    def test_manifest_must_match_the_declared_devices(self, project: Project) -> None:
        """The website declares a `service` network device; leaving it out of `devices` fails verify."""
        project.copy("static_website", "www")
        project.write(unikernel("www", "www", "hvt"), ["www"])
        result = project.build()
        assert statuses(result)["www"] == "failed"
        error = result.errors[0]
        assert "declares service (NET_BASIC), but the unikernel table declares none" in str(error)
        assert error.hint and 'devices = { service = "net" }' in error.hint

    def test_unknown_target(self, project: Project) -> None:
        project.copy("hello")
        project.write(unikernel("hello", "hello", "genode"))
        with pytest.raises(ConfigError, match=r"unikernel\.hello\.target: expected one of unix, hvt"):
            project.load()

    def test_solo5_options_are_refused_for_mirage(self, project: Project) -> None:
        project.copy("hello")
        project.write(HELLO_HVT + 'sources = ["x.c"]\n')
        with pytest.raises(ConfigError, match='sources: not an option of kind = "mirage"'):
            project.load()


class TestStaticWebsite:
    @staticmethod
    def www(target: str) -> str:
        return unikernel("www", "www", target, 'devices = { service = "net" }\ncmdline = "--ipv4=10.0.0.2/24"')

    @pytest.mark.parametrize("target", ["hvt", "virtio"])
    def test_builds_with_its_network_device(self, project: Project, target: str) -> None:
        project.copy("static_website", "www")
        project.write(self.www(target), ["www"])
        result = project.build()
        assert result.ok, result.errors
        assert (result.out_dir / f"www/dist/www.{target}").is_file()

    def test_run_needs_the_device_attached(self, project: Project) -> None:
        """Every manifest device must be attached: a clear error before the tender is started."""
        project.copy("static_website", "www")
        project.write(self.www("hvt"), ["www"])
        options = api.BuildOptions(cache_dir=project.cache, out_dir=project.root / "out")
        with pytest.raises(RunError, match="declares net device 'service'") as excinfo:
            api.run(project.load(), "www", (), options, backends=BACKENDS)
        assert excinfo.value.hint and 'attach = { service = "tap100" }' in excinfo.value.hint
