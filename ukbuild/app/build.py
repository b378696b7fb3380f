"""Building an app: every service's unikernel through its recipe's graph, then the app's own graph.

1. Each service's recipe project is built as it would be on its own (its
   unikernel and the recipe data images the service mounts), into
   ``OUT/services/NAME/`` — the same keys, so the same cache entries, as
   ``ukbuild build`` in the recipe's directory.
2. The app's own project (in memory, rooted at the app file's directory)
   holds the ``[volume.NAME]`` data images (a MariaDB data directory is
   bootstrapped first), the launcher images' shared base layer, one
   launcher image per service (``oci/NAME/``) and the urunc images
   (``oci/NAME-urunc/``).  Built kernels enter these actions by content.
3. ``compose.yaml`` and ``k8s/NAME.yaml`` are written next to them
   (only when their content changes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ukbuild import images
from ukbuild.errors import BuildError, ConfigError
from ukbuild.model import (
    Action,
    ExternalInput,
    Input,
    Origin,
    OutputInput,
    PathInput,
    Platform,
    Project,
    ToolchainSpec,
)
from ukbuild.plugins import Backend, ImageMetadata, UnikernelSpec

from . import launcher, network
from .model import App, Service

STEP_VERSION = 1
APP_TOOLCHAIN = "ukbuild-app"
BASE_TOOLCHAIN = "ukbuild-app-base"
MARIADB_TOOLCHAIN = "ukbuild-app-mariadb"
BASE_ACTION = "launcher-base"
MARIADB_TOOLS = ("mariadb-install-db", "mariadbd")


@attrs.frozen
class ServicePlan:
    """What the app knows about one service before the app's own graph is planned."""

    service: Service
    guest: str
    #: The recipe project, its unikernel and backend (None for a prebuilt kernel).
    project: Project | None = None
    spec: UnikernelSpec | None = None
    backend: Backend | None = None
    meta: ImageMetadata | None = None

    @property
    def networked(self) -> bool:
        """Whether the guest takes a network card: a Solo5 (MirageOS) kernel only when its manifest
        declares a network device (the bindings abort on a device not in the manifest)."""
        if self.guest != "mirage" or self.meta is None:
            return True
        return "NET_BASIC" in self.meta.devices.values()

    @property
    def targets(self) -> list[str]:
        if self.project is None or self.spec is None:
            return []
        return [self.spec.name, *(v.image for v in self.service.volumes if not v.from_app)]


def _guest(meta: ImageMetadata) -> str:
    if meta.guest in ("rumprun", "mirage"):
        return meta.guest
    return "multiboot"


def plan_services(app: App, backends: Mapping[str, Backend] | None = None) -> dict[str, ServicePlan]:
    """Load each service's recipe and check what the app asks of it."""
    from ukbuild._project import load_project

    projects: dict[Path, Project] = {}
    plans = {}
    for name, service in app.services.items():
        where = f"{service.origin}: service.{name}"
        if service.recipe is None:
            for volume in service.volumes:
                if not volume.from_app:
                    raise ConfigError(f"{where}.volumes: no [volume.{volume.image}] in the app",
                                      hint="a service with a prebuilt kernel mounts the app's own volumes",
                                      reason="unknown-volume")
            plans[name] = ServicePlan(service, service.guest or "linux")
            continue
        project = projects.get(service.recipe)
        if project is None:
            project = projects[service.recipe] = load_project(service.recipe, backends)
        spec = project.unikernels.get(service.unikernel or "")
        if spec is None:
            raise ConfigError(f"{where}.unikernel: recipe {service.recipe} has no unikernel {service.unikernel!r}",
                              hint="name one of: " + (", ".join(sorted(project.unikernels)) or "(none declared)"),
                              reason="unknown-unikernel")
        if backends is None:
            from ukbuild.api import _Session

            backends = _Session.load_backends()
        backend = backends.get(spec.backend)
        if backend is None:
            raise ConfigError(f"{where}: backend {spec.backend!r} of its unikernel is not installed",
                              hint=f"install ukbuild-{spec.backend}", reason="unknown-backend")
        for volume in service.volumes:
            if volume.from_app:
                continue
            image = project.images.get(volume.image)
            if image is None or image.unikernel is not None:
                data = sorted(n for n, i in project.images.items() if i.unikernel is None)
                raise ConfigError(f"{where}.volumes: {volume.image!r} is neither a [volume] of the app nor a data "
                                  f"image of recipe {service.recipe}",
                                  hint="name one of: " + (", ".join([*app.volumes, *data]) or "(none declared)"),
                                  reason="unknown-volume")
        meta = backend.image_metadata(spec)
        if service.container == "urunc" and (meta.guest not in ("rumprun", "mirage")
                                             or meta.monitor not in ("hvt", "spt")):
            raise ConfigError(
                f"{where}.container: urunc images are made only from Solo5 hvt/spt kernels "
                f"(Rumprun solo5_hvt/solo5_spt bakes, MirageOS hvt/spt builds); {service.unikernel} is "
                f"{meta.kernel_format}",
                hint='use container = "launcher" (QEMU in the container), or build the unikernel for hvt/spt',
                reason="bad-value")
        plans[name] = ServicePlan(service, _guest(meta), project, spec, backend, meta)
    return plans


@attrs.frozen
class AppProject:
    """The app's own project and where each service's pieces are."""

    project: Project
    launcher_images: Mapping[str, str]
    urunc_images: Mapping[str, str]
    volume_outputs: Mapping[str, str]


def volume_actions(app: App) -> list[Action]:
    """The ``[volume.NAME]`` data images (and the bootstrap actions feeding them)."""
    actions = []
    for name, volume in app.volumes.items():
        table = dict(volume.table)
        if volume.mariadb is None:
            _spec, action = images.data_image_action(name, table, volume.origin)
            actions.append(action)
            continue
        seeds = list(volume.mariadb["seed"])
        argv = ["ukbuild-app", "mariadb-datadir", "--out", "datadir", "--engine", volume.mariadb["engine"]]
        for index in range(len(seeds)):
            argv += ["--seed", f"sql/{index}.sql"]
        boot = Action(
            name=f"{name}.datadir", argv=argv, outputs=["datadir/"],
            inputs=[PathInput(seed, f"sql/{index}.sql") for index, seed in enumerate(seeds)],
            toolchain=MARIADB_TOOLCHAIN, step="app/mariadb-datadir", step_version=STEP_VERSION,
            origin=volume.origin,
        )
        _spec, action = images.data_image_action(name, table, volume.origin)
        where = "/".join(x for x in ("tree", volume.mariadb.get("datadir", "")) if x)
        action = attrs.evolve(action, argv=[*action.argv, "--tree", "tree"],
                              inputs=[*action.inputs, OutputInput(boot.name, where, "datadir")])
        actions += [boot, action]
    return actions


def plan_app_project(app: App, plans: Mapping[str, ServicePlan], out_dir: Path) -> AppProject:
    """The app's own actions, given the services' built outputs under ``out_dir/services/NAME``."""
    origin = Origin(str(app.file))
    actions: dict[str, Action] = {a.name: a for a in volume_actions(app)}
    formats = {str(v.table["format"]) for v in app.volumes.values()}
    toolchains: dict[str, ToolchainSpec] = {}
    endpoints = network.plan(app)
    launchers: dict[str, str] = {}
    uruncs: dict[str, str] = {}
    if any(p.service.container == "launcher" for p in plans.values()) and app.launcher_base is None:
        actions[BASE_ACTION] = base_action(origin)
        toolchains[BASE_TOOLCHAIN] = ToolchainSpec(BASE_TOOLCHAIN, ("sh",), origin, launchers=("ukbuild-app",))
    for name, plan in plans.items():
        service = plan.service
        if service.container == "launcher":
            layer, action = launcher_actions(app, plan, endpoints[name], out_dir, origin)
            actions[layer.name] = layer
            actions[action.name] = action
            launchers[name] = action.outputs[0]
        elif service.container == "urunc":
            action = urunc_action(app, plan, out_dir)
            actions[action.name] = action
            uruncs[name] = action.outputs[0]
            formats.add("oci")
    toolchains.update(images.emit_toolchains(formats, origin))
    toolchains[APP_TOOLCHAIN] = ToolchainSpec(APP_TOOLCHAIN, (), origin, launchers=("ukbuild-app", "ukbuild-emit"))
    if any(v.mariadb for v in app.volumes.values()):
        toolchains[MARIADB_TOOLCHAIN] = ToolchainSpec(MARIADB_TOOLCHAIN, MARIADB_TOOLS, origin,
                                                      launchers=("ukbuild-app",))
    volume_outputs = {n: a.outputs[0] for n, a in actions.items() if n in app.volumes}
    project = Project(
        name=f"app-{app.name}", root=str(app.root), actions=actions, platform=_platform(),
        default_targets=tuple(sorted(actions)), files=(str(app.file),), toolchains=toolchains,
    )
    return AppProject(project, launchers, uruncs, volume_outputs)


def _platform() -> Platform:
    return Platform("x86_64-linux-gnu", "x86_64-linux-gnu", "x86_64-linux-gnu")


def base_action(origin: Origin) -> Action:
    inputs: list[Input] = [ExternalInput(src, f"rootfs/{dest}", f"launcher-base:{dest}")
                           for src, dest in launcher.base_inputs()]
    argv = ["ukbuild-app", "base-layer", "--rootfs", "rootfs", "--out", "launcher/base"]
    for package, version in sorted(launcher.package_versions().items()):
        argv += ["--package", f"{package}={version}"]
    return Action(name=BASE_ACTION, argv=argv, outputs=["launcher/base.tar.gz", "launcher/base.json"],
                  inputs=inputs, toolchain=BASE_TOOLCHAIN, step="app/launcher-base", step_version=STEP_VERSION,
                  origin=origin)


def kernel_input(plan: ServicePlan, out_dir: Path, dest: str) -> Input:
    service = plan.service
    if plan.meta is None:
        assert service.kernel is not None
        return ExternalInput(str(service.kernel), dest, f"service-kernel:{service.name}")
    return ExternalInput(str(out_dir / "services" / service.name / plan.meta.kernel), dest,
                         f"service-kernel:{service.name}")


def volume_input(app: App, plan: ServicePlan, volume_name: str, from_app: bool, out_dir: Path,
                 dest: str) -> tuple[Input, str]:
    """The input staging a service's volume under ``dest``, and the image's path below it.

    An app volume comes whole (its action's outputs at their own paths under
    ``dest``): staging a single file of another action with ``OutputInput.path``
    would not key its content.
    """
    if from_app:
        fmt = str(app.volumes[volume_name].table["format"])
        return OutputInput(volume_name, dest), images.FORMATS[fmt][0].format(name=volume_name)
    assert plan.project is not None
    image = plan.project.images[volume_name]
    return (ExternalInput(str(out_dir / "services" / plan.service.name / image.output), f"{dest}/{image.output}",
                          f"service-volume:{plan.service.name}:{volume_name}"), image.output)


def guest_launch(app: App, plan: ServicePlan, endpoint: network.Endpoint | None, kernel: Path,
                 volume_paths: list[Path], *, initrd: Path | None = None) -> tuple[object, str]:
    """The service's QEMU launch (from its backend, or for a prebuilt kernel) and its app command line."""
    from ukbuild.runner import Drive, ProcessLaunch, QemuLaunch

    service = plan.service
    if plan.backend is not None and plan.spec is not None:
        launch = plan.backend.launch(plan.spec, kernel, [])
        if isinstance(launch, ProcessLaunch):
            raise ConfigError(
                f"{service.origin}: service.{service.name}: {service.unikernel} runs as a host process "
                f"({os.path.basename(launch.argv[0])}), not under QEMU",
                hint='ship it as a urunc image (container = "urunc"); QEMU launchers and `ukbuild run` boot '
                     "Rumprun hw, MirageOS virtio and Multiboot kernels", reason="not-runnable")
    else:
        extra: tuple[str, ...] = ("-initrd", str(initrd)) if initrd else ()
        launch = QemuLaunch(kernel=kernel, append=service.cmdline, extra_args=extra, debug_exit=False,
                            memory_mib=256 if plan.guest == "linux" else 128)
    assert isinstance(launch, QemuLaunch)
    # The app's volumes replace the recipe's own block devices (the app decides, as for the network).
    own = () if service.volumes else launch.drives
    blk = [(len(own) + i, v.mount) for i, v in enumerate(service.volumes) if v.mount]
    append = network.guest_cmdline(plan.guest, launch.append, endpoint if plan.networked else None, blk=blk,
                                   env=service.env,
                                   replace_blk=bool(service.volumes))
    extra_args = _strip_net(launch.extra_args)
    drives = (*own, *(Drive(p, "virtio") for p in volume_paths))
    launch = attrs.evolve(launch, append=append, extra_args=extra_args, drives=drives,
                          memory_mib=service.memory or launch.memory_mib)
    return launch, append


def _strip_net(args: tuple[str, ...]) -> tuple[str, ...]:
    """The backend's own network options (the app replaces them)."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if arg in ("-netdev", "-nic", "-net") or (arg == "-device" and nxt.startswith(("virtio-net", "e1000"))):
            skip = True
            continue
        out.append(arg)
    return tuple(out)


def launcher_actions(app: App, plan: ServicePlan, endpoint: network.Endpoint, out_dir: Path,
                     origin: Origin) -> tuple[Action, Action]:
    """The service's unikernel layer (kernel and boot files) and its launcher image on top."""
    service = plan.service
    layer_inputs: list[Input] = [kernel_input(plan, out_dir, "layer/ukbuild/kernel")]
    inputs: list[Input] = []
    if app.launcher_base is None:
        inputs.append(OutputInput(BASE_ACTION))
        base = ["--base", "launcher/base"]
    else:
        inputs.append(ExternalInput(str(app.launcher_base[0]), "base-image", "launcher-base-image"))
        base = ["--base-image", "base-image", "--base-tag", app.launcher_base[1]]
    volume_paths = []
    for volume in service.volumes:
        item, rel = volume_input(app, plan, volume.image, volume.from_app, out_dir, f"app/ukbuild/volumes/{volume.image}")
        inputs.append(item)
        volume_paths.append(Path(f"/ukbuild/volumes/{volume.image}/{rel}"))
    if service.initrd is not None:
        layer_inputs.append(ExternalInput(str(service.initrd), "layer/ukbuild/initrd", f"service-initrd:{service.name}"))
    launch, append = guest_launch(app, plan, endpoint, Path("/ukbuild/kernel"), volume_paths)
    backend_drives = launch.drives[: len(launch.drives) - len(volume_paths)]  # type: ignore[attr-defined]
    drives: list[tuple[str, bool]] = []
    for index, drive in enumerate(backend_drives):
        dest = f"layer/ukbuild/drives/{index}.img"
        layer_inputs.append(ExternalInput(str(drive.path), dest, f"service-drive:{service.name}:{index}"))
        drives.append((f"/ukbuild/drives/{index}.img", drive.readonly))
    drives += [(str(p), False) for p in volume_paths]
    links = [(link, app.services[link].address, port) for link in service.links for port in app.services[link].served]
    slirp = network.gateway_slirp(app)
    extra = list(launch.extra_args)  # type: ignore[attr-defined]
    facts = launcher.launch_facts(
        name=service.name, address=endpoint.address, prefix=endpoint.prefix, network=str(app.network),
        mac=endpoint.mac, slirp_host=slirp.host, slirp_dns=slirp.dns, ports=service.served, links=links,
        memory=launch.memory_mib, append=append, drives=drives, extra=extra,  # type: ignore[attr-defined]
        nic=plan.networked,
    )
    prefix = f"launcher/{service.name}-unikernel"
    layer = Action(name=f"{service.name}.unikernel-layer",
                   argv=["ukbuild-app", "layer", "--tree", "layer", "--out", prefix],
                   outputs=[f"{prefix}.tar.gz", f"{prefix}.json"], inputs=layer_inputs, toolchain=APP_TOOLCHAIN,
                   step="app/unikernel-layer", step_version=STEP_VERSION, origin=origin)
    inputs.append(OutputInput(layer.name))
    output = f"oci/{service.name}/"
    argv = ["ukbuild-app", "launcher-image", *base, "--layer", prefix, "--tree", "app", "--out", output.rstrip("/"),
            "--name", f"{app.name}-{service.name}", "--tag", app.tag,
            "--text", "ukbuild/service.env=" + launcher.service_env(facts),
            "--label", f"dev.ukbuild.app={app.name}", "--label", f"dev.ukbuild.service={service.name}",
            "--label", f"dev.ukbuild.guest={plan.guest}"]
    image = Action(name=f"{service.name}.launcher", argv=argv, outputs=[output], inputs=inputs,
                   toolchain=APP_TOOLCHAIN, step="app/launcher-image", step_version=STEP_VERSION, origin=origin)
    return layer, image


def urunc_action(app: App, plan: ServicePlan, out_dir: Path) -> Action:
    service = plan.service
    assert plan.meta is not None and plan.spec is not None
    table = {"unikernel": plan.spec.name, "format": "oci", "urunc": True, "tag": app.tag}
    name = f"{service.name}.urunc"
    _spec, action = images.image_action(f"{app.name}-{service.name}", table, plan.meta, service.origin)
    inputs = [kernel_input(plan, out_dir, plan.meta.kernel) if isinstance(i, OutputInput) else i
              for i in action.inputs]
    output = f"oci/{service.name}-urunc/"
    argv = [f"--out={output.rstrip('/')}" if arg.startswith("--out=") else arg for arg in action.argv]
    return attrs.evolve(action, name=name, inputs=inputs, outputs=[output], argv=argv)


def _overrides_for(project: Project, overrides: Mapping[str, str]) -> dict[str, str]:
    """The ``--override`` entries naming packages of ``project`` (each recipe gets its own)."""
    from ukbuild.model import SourceInput

    names = {i.name for a in project.actions.values() for i in a.inputs if isinstance(i, SourceInput)}
    return {name: path for name, path in overrides.items() if name in names}


@attrs.frozen
class AppBuildResult:
    ok: bool
    out_dir: Path
    #: service → built kernel, launcher layout, urunc layout (absolute paths; None when not built).
    kernels: Mapping[str, Path]
    launchers: Mapping[str, Path]
    urunc: Mapping[str, Path]
    volumes: Mapping[str, Path]
    manifests: tuple[Path, ...]
    #: Every ukbuild build that ran: the services' recipe builds, then the app's own.
    results: Mapping[str, object]

    def count(self, status: str) -> int:
        return sum(r.count(status) for r in self.results.values())  # type: ignore[attr-defined]


def build_app(app: App, options: object = None, *, backends: Mapping[str, Backend] | None = None,
              on_build: Callable[[str, object], None] | None = None) -> AppBuildResult:
    """Build every service image of ``app`` and write its compose and Kubernetes files.

    ``on_build(scope, build)`` sees each :class:`ukbuild.api.Build` before it
    runs (scope ``service:NAME`` or ``app``), e.g. to subscribe to its events.
    """
    from ukbuild import api

    from . import manifests

    options = options or api.BuildOptions()
    assert isinstance(options, api.BuildOptions)
    out_dir = Path(options.out_dir or app.root / "out").absolute()
    if backends is None and any(s.recipe is not None for s in app.services.values()):
        backends = api._Session.load_backends()  # once for every build below
    plans = plan_services(app, backends)
    unknown = sorted(set(options.overrides) - {n for p in plans.values() if p.project is not None
                                               for n in _overrides_for(p.project, options.overrides)})
    if unknown:
        raise ConfigError(f"--override {unknown[0]}: no service's recipe has a package named '{unknown[0]}'",
                          hint="name a package of one of the app's recipes", reason="unknown-target")
    results: dict[str, api.BuildResult] = {}
    kernels: dict[str, Path] = {}
    for name, plan in plans.items():
        if plan.project is None:
            assert plan.service.kernel is not None
            kernels[name] = plan.service.kernel
            continue
        service_out = out_dir / "services" / name
        build = api.Build(plan.project, plan.targets, attrs.evolve(
            options, out_dir=service_out, state_dir=None, overrides=_overrides_for(plan.project, options.overrides)),
            backends=backends)
        if on_build is not None:
            on_build(f"service:{name}", build)
        result = build.run()
        results[f"service:{name}"] = result
        if not result.ok:
            errors = result.errors
            raise errors[0] if errors else BuildError(f"building service {name} failed", reason="build-failed")
        assert plan.meta is not None
        kernels[name] = service_out / plan.meta.kernel
    app_project = plan_app_project(app, plans, out_dir)
    build = api.Build(app_project.project, (), attrs.evolve(options, out_dir=out_dir, overrides={}), backends=backends)
    if on_build is not None:
        on_build("app", build)
    result = build.run()
    results["app"] = result
    if not result.ok:
        errors = result.errors
        raise errors[0] if errors else BuildError(f"building app {app.name} failed", reason="build-failed")
    written = manifests.write_all(app, plans, out_dir)
    return AppBuildResult(
        True, out_dir, kernels,
        {n: out_dir / p.rstrip("/") for n, p in app_project.launcher_images.items()},
        {n: out_dir / p.rstrip("/") for n, p in app_project.urunc_images.items()},
        {n: out_dir / p for n, p in app_project.volume_outputs.items()},
        tuple(written), results,
    )
