"""urunc images of app services: only Solo5 hvt/spt kernels (here a MirageOS hvt build with the fake
toolchain); the image carries urunc's annotations, and compose/k8s name the urunc runtime class."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes.mirage import FakeMirage, install_fake_mirage
from ukbuild.app import build_app, load_app
from ukbuild.oci.urunc import PREFIX

from .conftest import AppDir, require_module

TESTDATA = Path(__file__).resolve().parents[1] / "fakes" / "mirage" / "testdata"
PACKAGES = ("lwt", "duration", "fmt", "mirage-solo5", "mirage-unix", "uri", "magic-mime")

APP = """
[app]
name = "uk"

[service.hello]
recipe = "mirage"
unikernel = "hello"
container = "urunc"
expose = [8080]

[service.box]
recipe = "@EXAMPLE@"
unikernel = "hello"
links = ["hello"]
"""


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> FakeMirage:
    installed = install_fake_mirage(tmp_path_factory.mktemp("fake-mirage"))
    for name in PACKAGES:
        installed.add_package(name, "1.0", depends=["lwt"] if name != "lwt" else [])
    return installed


@pytest.fixture
def mirage_app(app_dir: AppDir, fake: FakeMirage, monkeypatch: pytest.MonkeyPatch) -> AppDir:
    monkeypatch.setenv("UKBUILD_MIRAGE_PREFIX", str(fake.prefix))
    monkeypatch.delenv("UKBUILD_SOLO5_PREFIX", raising=False)
    monkeypatch.setenv("OPAMROOT", str(fake.opam_root))
    recipe = app_dir.root / "mirage"
    shutil.copytree(TESTDATA / "hello", recipe / "hello")
    (recipe / "ukbuild.toml").write_text('[project]\nname = "m"\n\n[toolchain.mirage]\nbackend = "mirage"\n\n'
                                         '[unikernel.hello]\ntoolchain = "mirage"\ndir = "hello"\ntarget = "hvt"\n')
    app_dir.write(APP)
    return app_dir


def test_urunc_image_annotations_and_runtime_class(mirage_app: AppDir) -> None:
    result = mirage_app.build()
    assert set(result.urunc) == {"hello"} and set(result.launchers) == {"box"}
    layout = result.urunc["hello"]
    index = json.loads((layout / "index.json").read_text())
    image = next(m for m in index["manifests"] if "org.opencontainers.image.ref.name" in m.get("annotations", {}))
    manifest = json.loads((layout / "blobs" / "sha256" / image["digest"][7:]).read_text())
    annotations = manifest["annotations"]
    assert annotations[PREFIX + "unikernelType"] == "mirage"
    assert annotations[PREFIX + "hypervisor"] == "hvt"
    assert annotations[PREFIX + "binary"] == "/.boot/kernel"
    config = json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    out = result.out_dir
    compose = (out / "compose.yaml").read_text()
    assert "image: \"localhost/ukbuild/uk-hello-urunc:latest\"\n    runtime: urunc" in compose
    hello = (out / "k8s" / "hello.yaml").read_text()
    assert "runtimeClassName: urunc" in hello
    assert "runtimeClassName" not in (out / "k8s" / "box.yaml").read_text()
    runtime_class = (out / "k8s" / "runtimeclass-urunc.yaml").read_text()
    assert "kind: RuntimeClass" in runtime_class and "handler: urunc" in runtime_class
    require_module("kubernetes_validate", "kubernetes-validate")
    from .test_build import validate_k8s

    assert sorted(validate_k8s(out)) == ["Deployment", "Deployment", "RuntimeClass", "Service"]


@pytest.mark.realtool("docker-compose")
def test_compose_with_urunc_runtime_validates(mirage_app: AppDir) -> None:
    out = mirage_app.build().out_dir
    proc = subprocess.run(["docker-compose", "-f", "compose.yaml", "config"], capture_output=True, text=True,
                          timeout=60, cwd=out)
    assert proc.returncode == 0, proc.stderr
    assert "runtime: urunc" in proc.stdout


def test_launcher_of_a_solo5_hvt_kernel_is_refused(mirage_app: AppDir) -> None:
    """An hvt kernel runs under a Solo5 tender, not QEMU: a launcher image of it is refused, by name."""
    from ukbuild.errors import ConfigError

    mirage_app.write(APP.replace('container = "urunc"', 'container = "launcher"'))
    with pytest.raises(ConfigError) as err:
        build_app(load_app(mirage_app.file), mirage_app.options())
    assert "service.hello: hello runs as a host process (solo5-hvt), not under QEMU" in err.value.message
    assert 'container = "urunc"' in (err.value.hint or "")


VIRTIO_APP = """
[app]
name = "mv"

[service.hello]
recipe = "mirage"
unikernel = "hello"
container = "none"

[service.www]
recipe = "mirage"
unikernel = "www"
container = "none"
"""


@pytest.mark.realtool("qemu-system-x86_64")
def test_mirage_virtio_services_under_ukbuild_run(mirage_app: AppDir) -> None:
    """MirageOS virtio kernels boot on the app network: one whose Solo5 manifest declares a network
    device gets a NIC and --ipv4 arguments; one without gets neither (the bindings would abort)."""
    from ukbuild.app import AppRun, plan_services

    recipe = mirage_app.root / "mirage"
    shutil.copytree(TESTDATA / "static_website", recipe / "www")
    (recipe / "ukbuild.toml").write_text(
        '[project]\nname = "m"\n\n[toolchain.mirage]\nbackend = "mirage"\n\n'
        '[unikernel.hello]\ntoolchain = "mirage"\ndir = "hello"\ntarget = "virtio"\n\n'
        '[unikernel.www]\ntoolchain = "mirage"\ndir = "www"\ntarget = "virtio"\ndevices = { service = "net" }\n'
        'attach = { service = "tap100" }\n')  # the app replaces the recipe's tap
    mirage_app.write(VIRTIO_APP)
    app = load_app(mirage_app.file)
    built = build_app(app, mirage_app.options())
    with AppRun(app, plan_services(app), built) as running:
        commands = {c.service: c for c in running.commands}
        assert running.wait_for("hello", r"solo5_exit\(0\)", 60), running.output["hello"].decode()
        assert running.wait_for("www", r"Solo5: (solo5_exit|Virtio net)|\[application\]", 60)
        www = running.output["www"].decode(errors="replace")
    assert commands["www"].append.endswith("--ipv4=10.77.0.11/24 --ipv4-gateway=10.77.0.1")
    assert "virtio-net-pci" in " ".join(commands["www"].argv)
    assert "--ipv4" not in commands["hello"].append and "virtio-net-pci" not in " ".join(commands["hello"].argv)
    assert "not in manifest" not in www, www[-1500:]
