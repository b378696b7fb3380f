"""The app file: services, how they reach each other, published ports, data volumes.

    [app]
    name = "webstack"
    network = "10.77.0.0/24"          # the services' private network (default 10.77.0.0/24)
    registry = "localhost/ukbuild"    # image names in compose.yaml and the manifests
    tag = "latest"
    launcher_base = "qemu-base:latest"   # launcher images on this OCI layout (DIR:TAG) instead of the
                                      # base layer made from this host's Debian packages

    [service.web]
    recipe = "../rumprun/nginx"       # a project directory or file, relative to this file
    unikernel = "nginx"               # the [unikernel.NAME] of that project
    address = "10.77.0.10"            # default: .10, .11, … in the order the services are written
    ports = ["8080:80"]               # published on 127.0.0.1: HOST:GUEST (tcp)
    expose = [80]                     # ports it serves to the other services
    links = ["php"]                   # services it connects to (started first)
    volumes = [{ image = "www", mount = "/data" }]   # data images: [volume.NAME] or the recipe's [image.NAME];
                                                     # they replace the recipe's own block devices
    container = "launcher"            # launcher | urunc | none (how compose/k8s run it)
    memory = 256                      # MiB
    env = { TZ = "UTC" }

    [service.tiny]                    # a prebuilt kernel instead of a recipe
    kernel = "bzImage"
    initrd = "initrd.cpio"
    guest = "linux"                   # linux | multiboot (how it gets its network config)
    cmdline = "console=ttyS0"

    [volume.www]                      # a data image, as an [image.NAME] table of a data format
    format = "ext2"
    tree = "www/"

    [volume.db]
    format = "ext2"
    mariadb = { seed = ["db/schema.sql", "db/seed.sql"], engine = "Aria", datadir = "db" }   # bootstrap a MariaDB data directory with the host's server tools

Every mistake is a :class:`~ukbuild.errors.ConfigError` naming
``file:line: service.NAME.FIELD`` and how to fix it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ukbuild._origins import Origins, read_toml
from ukbuild.errors import ConfigError
from ukbuild.model import Origin

APP_FIELDS = frozenset({"name", "network", "registry", "tag", "launcher_base"})
SERVICE_FIELDS = frozenset({"recipe", "unikernel", "kernel", "initrd", "guest", "cmdline", "address", "ports",
                            "expose", "links", "volumes", "container", "memory", "env"})
VOLUME_BOOTSTRAPS = frozenset({"mariadb"})
MARIADB_FIELDS = frozenset({"seed", "engine", "datadir"})
CONTAINERS = ("launcher", "urunc", "none")
PREBUILT_GUESTS = ("linux", "multiboot")
DEFAULT_NETWORK = "10.77.0.0/24"
#: Service addresses start here in the network (.1 is the gateway, .2-.9 are kept for ukbuild).
FIRST_HOST = 10
_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]\Z|[a-z]\Z")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MOUNT_RE = re.compile(r"/[A-Za-z0-9._/-]*\Z")


@attrs.frozen
class Port:
    """A published port: ``127.0.0.1:host`` on the host → ``guest`` in the service."""

    host: int
    guest: int


@attrs.frozen
class Volume:
    """A data image attached to a service, mounted at ``mount`` in the guest."""

    image: str
    mount: str
    #: True when the image is a [volume.NAME] of the app, False for the recipe's [image.NAME].
    from_app: bool


@attrs.frozen
class Service:
    name: str
    origin: Origin
    address: str
    #: A recipe project (file) and the unikernel in it …
    recipe: Path | None = None
    unikernel: str | None = None
    #: … or a prebuilt kernel (and initrd), with the guest kind that says how it gets its network.
    kernel: Path | None = None
    initrd: Path | None = None
    guest: str | None = None
    cmdline: str = ""
    ports: tuple[Port, ...] = ()
    expose: tuple[int, ...] = ()
    links: tuple[str, ...] = ()
    volumes: tuple[Volume, ...] = ()
    container: str = "launcher"
    memory: int | None = None
    env: tuple[tuple[str, str], ...] = ()

    @property
    def served(self) -> tuple[int, ...]:
        """Every port the service listens on: exposed to peers or published."""
        return tuple(sorted({*self.expose, *(p.guest for p in self.ports)}))


@attrs.frozen
class VolumeSpec:
    """A ``[volume.NAME]`` table: a data image, maybe bootstrapped by a tool first."""

    name: str
    table: Mapping[str, object]
    origin: Origin
    #: ``{"seed": (SQL files…), "engine": "Aria", "datadir": "db"}`` for a bootstrapped MariaDB data
    #: directory (at ``datadir`` in the image, "" for its root).
    mariadb: Mapping[str, Any] | None = None


@attrs.frozen
class App:
    name: str
    file: Path
    network: ipaddress.IPv4Network
    services: Mapping[str, Service]
    volumes: Mapping[str, VolumeSpec]
    registry: str = "localhost/ukbuild"
    tag: str = "latest"
    #: (OCI layout directory, tag) of a user-named base image for the launcher images.
    launcher_base: tuple[Path, str] | None = None

    @property
    def root(self) -> Path:
        return self.file.parent

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    def image_ref(self, service: str) -> str:
        return f"{self.registry}/{self.name}-{service}:{self.tag}"

    def order(self) -> list[str]:
        """Services in start order: links first, then declaration order."""
        done: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            for link in self.services[name].links:
                visit(link)
            done.append(name)

        for name in self.services:
            visit(name)
        return done


def is_app_file(path: Path | str) -> bool:
    """Whether ``path`` is an app file (a TOML file with an ``[app]`` table)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        head = p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^\s*\[app\]\s*(#.*)?$", head, re.M) is not None


def load_app(path: Path | str) -> App:
    """Read and validate an app file."""
    file = Path(path).absolute()
    data, text = read_toml(file)
    return _Loader(file, Origins(text)).app(data)


class _Loader:
    def __init__(self, file: Path, origins: Origins) -> None:
        self.file = file
        self.origins = origins

    def origin(self, *path: str) -> Origin:
        return Origin(str(self.file), self.origins.line(path))

    def bad(self, path: tuple[str, ...], message: str, hint: str, reason: str = "bad-value") -> ConfigError:
        return ConfigError(f"{self.origin(*path)}: {'.'.join(path)}: {message}", hint=hint, reason=reason)

    def table(self, value: object, path: tuple[str, ...], example: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.bad(path, "expected a table", example)
        return value

    def app(self, data: dict[str, Any]) -> App:
        for key in data:
            if key not in ("app", "service", "volume"):
                raise self.bad((key,), "unknown table", "an app file has [app], [service.NAME] and [volume.NAME]",
                               "unknown-field")
        head = self.table(data.get("app"), ("app",), '[app]\nname = "webstack"')
        for key in head:
            if key not in APP_FIELDS:
                raise self.bad(("app", key), "unknown field", "allowed: " + ", ".join(sorted(APP_FIELDS)),
                               "unknown-field")
        name = self.string(head, ("app", "name"), '"webstack"', required=True)
        if not _NAME_RE.match(name):
            raise self.bad(("app", "name"), f"{name!r} is not a valid name",
                           "lower-case letters, digits and '-', starting with a letter (it names images and "
                           "Kubernetes objects)")
        net_text = self.string(head, ("app", "network"), f'"{DEFAULT_NETWORK}"') or DEFAULT_NETWORK
        try:
            network = ipaddress.IPv4Network(net_text)
        except ValueError as exc:
            raise self.bad(("app", "network"), f"{net_text!r} is not an IPv4 network: {exc}",
                           f'network = "{DEFAULT_NETWORK}"') from exc
        if not network.is_private or network.prefixlen > 28:
            raise self.bad(("app", "network"), f"{net_text} must be a private network of at least 16 addresses",
                           f'network = "{DEFAULT_NETWORK}"')
        registry = self.string(head, ("app", "registry"), '"localhost/ukbuild"') or "localhost/ukbuild"
        tag = self.string(head, ("app", "tag"), '"latest"') or "latest"
        base = self.string(head, ("app", "launcher_base"), '"qemu-base:latest"')
        launcher_base = None
        if base:
            directory, _, base_tag = base.rpartition(":")
            layout = self.file.parent / directory
            if not directory or not base_tag or not (layout / "index.json").is_file():
                raise self.bad(("app", "launcher_base"), f"{base!r} is not DIR:TAG of an OCI image layout",
                               'launcher_base = "qemu-base:latest" (a directory with index.json, relative to '
                               "this file), holding QEMU, busybox and the firmware at the usual Debian paths",
                               "not-found")
            launcher_base = (layout, base_tag)
        volumes = {
            vname: self.volume(vname, self.table(vtable, ("volume", vname), 'format = "ext2"'))
            for vname, vtable in self.table(data.get("volume", {}), ("volume",), "[volume.NAME]").items()
        }
        services_table = self.table(data.get("service", {}), ("service",), "[service.web]")
        if not services_table:
            raise self.bad(("service",), "the app has no services", '[service.web]\nrecipe = "…"\nunikernel = "…"')
        used: dict[str, str] = {}
        services: dict[str, Service] = {}
        for index, (sname, stable) in enumerate(services_table.items()):
            service = self.service(sname, self.table(stable, ("service", sname), 'recipe = "…"'), index, network,
                                   volumes)
            if service.address in used:
                raise self.bad(("service", sname, "address"),
                               f"{service.address} is already the address of service {used[service.address]}",
                               "give every service its own address")
            used[service.address] = sname
            services[sname] = service
        published: dict[int, str] = {}
        for service in services.values():
            for link in service.links:
                if link not in services:
                    raise self.bad(("service", service.name, "links"), f"no service named {link!r}",
                                   "name one of: " + ", ".join(services))
                if link == service.name:
                    raise self.bad(("service", service.name, "links"), "a service cannot link to itself",
                                   "remove it")
                if not services[link].served:
                    raise self.bad(("service", service.name, "links"),
                                   f"service {link} serves no port (neither expose nor ports)",
                                   f"add expose = [PORT] to [service.{link}]")
            for port in service.ports:
                if port.host in published:
                    raise self.bad(("service", service.name, "ports"),
                                   f"host port {port.host} is already published by service {published[port.host]}",
                                   "publish each host port once")
                published[port.host] = service.name
        app = App(name, self.file, network, services, volumes, registry, tag, launcher_base)
        self.check_cycles(app)
        return app

    def check_cycles(self, app: App) -> None:
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*trail[trail.index(name):], name])
                raise self.bad(("service", name, "links"), f"links form a cycle: {cycle}",
                               "links say who starts first; break the cycle")
            state[name] = 1
            for link in app.services[name].links:
                visit(link, [*trail, name])
            state[name] = 2

        for name in app.services:
            visit(name, [])

    def string(self, table: Mapping[str, object], path: tuple[str, ...], example: str, *,
               required: bool = False) -> str:
        value = table.get(path[-1])
        if value is None:
            if required:
                raise self.bad(path, "missing", f"{path[-1]} = {example}", "missing-field")
            return ""
        if not isinstance(value, str):
            raise self.bad(path, "expected a string", f"{path[-1]} = {example}")
        return value

    def port(self, value: object, path: tuple[str, ...]) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            raise self.bad(path, f"{value!r} is not a port number (1-65535)", "e.g. 80")
        return value

    def service(self, name: str, table: Mapping[str, object], index: int, network: ipaddress.IPv4Network,
                volumes: Mapping[str, VolumeSpec]) -> Service:
        path = ("service", name)
        if not _NAME_RE.match(name):
            raise self.bad(path, f"{name!r} is not a valid service name",
                           "lower-case letters, digits and '-', starting with a letter")
        for key in table:
            if key not in SERVICE_FIELDS:
                raise self.bad((*path, key), "unknown field", "allowed: " + ", ".join(sorted(SERVICE_FIELDS)),
                               "unknown-field")
        kw: dict[str, Any] = {}
        if "recipe" in table and "kernel" in table:
            raise self.bad((*path, "kernel"), "give either recipe (+ unikernel) or kernel, not both",
                           "remove one of them")
        if "recipe" in table:
            recipe = self.string(table, (*path, "recipe"), '"../rumprun/nginx"')
            kw["unikernel"] = self.string(table, (*path, "unikernel"), '"nginx"', required=True)
            file = (self.file.parent / recipe)
            if file.is_dir():
                file = file / "ukbuild.toml"
            if not file.is_file():
                raise self.bad((*path, "recipe"), f"recipe {recipe!r} not found (looked for {os.path.normpath(file)})",
                               "write that recipe (a ukbuild project with the unikernel), or point recipe at "
                               "an existing project directory or file", "missing-recipe")
            kw["recipe"] = file
            for key in ("kernel", "initrd", "guest"):
                if key in table:
                    raise self.bad((*path, key), "only for a prebuilt kernel", "remove it (the recipe says it)")
        elif "kernel" in table:
            for key in ("kernel", "initrd"):
                if key in table:
                    rel = self.string(table, (*path, key), '"bzImage"')
                    file = self.file.parent / rel
                    if not file.is_file():
                        raise self.bad((*path, key), f"{rel!r} not found (looked for {file})",
                                       "build or copy the file there first", "not-found")
                    kw[key] = file
            guest = self.string(table, (*path, "guest"), '"linux"', required=True)
            if guest not in PREBUILT_GUESTS:
                raise self.bad((*path, "guest"), f"unknown guest kind {guest!r}", "one of: " + ", ".join(PREBUILT_GUESTS))
            kw["guest"] = guest
            if "unikernel" in table:
                raise self.bad((*path, "unikernel"), "only with a recipe", "remove it, or give recipe too")
        else:
            raise self.bad(path, "needs a recipe (and unikernel) or a prebuilt kernel",
                           'recipe = "../rumprun/nginx"\nunikernel = "nginx"', "missing-field")
        kw["cmdline"] = self.string(table, (*path, "cmdline"), '"…"')
        if "cmdline" in table and "recipe" in table:
            raise self.bad((*path, "cmdline"), "a recipe's unikernel brings its own command line",
                           "set it in the recipe's [unikernel] table")
        if "address" in table:
            text = self.string(table, (*path, "address"), '"10.77.0.10"')
            try:
                address = ipaddress.IPv4Address(text)
            except ValueError as exc:
                raise self.bad((*path, "address"), f"{text!r} is not an IPv4 address", '"10.77.0.10"') from exc
        else:
            address = network.network_address + FIRST_HOST + index
        hosts = range(int(network.network_address) + FIRST_HOST, int(network.broadcast_address))
        if int(address) not in hosts:
            raise self.bad((*path, "address"), f"{address} is not usable in the app network {network}",
                           f"use {network.network_address + FIRST_HOST} … {network.broadcast_address - 1} "
                           "(.1 is the gateway, .2-.9 are kept for ukbuild)")
        kw["address"] = str(address)
        ports = []
        for i, item in enumerate(self.list(table, (*path, "ports"), '["8080:80"]')):
            if not isinstance(item, str) or not re.fullmatch(r"\d+:\d+", item):
                raise self.bad((*path, "ports"), f"entry {i + 1} ({item!r}) is not HOST:GUEST",
                               'ports = ["8080:80"] (published on 127.0.0.1 only)')
            host, guest_port = (int(x) for x in item.split(":"))
            ports.append(Port(self.port(host, (*path, "ports")), self.port(guest_port, (*path, "ports"))))
        kw["ports"] = tuple(ports)
        kw["expose"] = tuple(sorted({self.port(p, (*path, "expose"))
                                     for p in self.list(table, (*path, "expose"), "[9000]")}))
        links = self.list(table, (*path, "links"), '["php"]')
        if not all(isinstance(x, str) for x in links):
            raise self.bad((*path, "links"), "expected service names", 'links = ["php"]')
        kw["links"] = tuple(links)
        vols = []
        for i, item in enumerate(self.list(table, (*path, "volumes"), '[{ image = "www", mount = "/data" }]')):
            where = (*path, "volumes")
            if not isinstance(item, dict) or set(item) - {"image", "mount"} or not isinstance(item.get("image"), str):
                raise self.bad(where, f"entry {i + 1} must be {{ image = \"NAME\", mount = \"/path\" }}",
                               'volumes = [{ image = "www", mount = "/data" }]')
            mount = item.get("mount", "")
            if not isinstance(mount, str) or (mount and not _MOUNT_RE.match(mount)):
                raise self.bad(where, f"entry {i + 1}: mount {mount!r} is not an absolute path", 'mount = "/data"')
            vols.append(Volume(item["image"], mount, item["image"] in volumes))
        kw["volumes"] = tuple(vols)
        container = self.string(table, (*path, "container"), '"launcher"') or "launcher"
        if container not in CONTAINERS:
            raise self.bad((*path, "container"), f"unknown container kind {container!r}",
                           "launcher (QEMU in the container, any OCI runtime), urunc (Solo5 hvt/spt kernels "
                           "under the urunc runtime) or none")
        if container == "urunc" and "kernel" in table:
            raise self.bad((*path, "container"), "urunc images come from recipes (Solo5 hvt/spt bakes or MirageOS "
                           "hvt/spt builds), not prebuilt kernels", 'container = "launcher"')
        kw["container"] = container
        if "memory" in table:
            memory = table["memory"]
            if not isinstance(memory, int) or isinstance(memory, bool) or not 16 <= memory <= 65536:
                raise self.bad((*path, "memory"), f"{memory!r} is not a memory size in MiB (16-65536)", "memory = 256")
            kw["memory"] = memory
        env = table.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) and _ENV_RE.match(k) for k, v in env.items()):
            raise self.bad((*path, "env"), "expected a table of NAME = \"value\"", 'env = { TZ = "UTC" }')
        kw["env"] = tuple(sorted(env.items()))
        return Service(name=name, origin=self.origin(*path), **kw)

    def list(self, table: Mapping[str, object], path: tuple[str, ...], example: str) -> list[Any]:
        value = table.get(path[-1], [])
        if not isinstance(value, list):
            raise self.bad(path, "expected a list", f"{path[-1]} = {example}")
        return value

    def volume(self, name: str, table: dict[str, Any]) -> VolumeSpec:
        from ukbuild.images import DATA_FORMATS

        path = ("volume", name)
        if not _NAME_RE.match(name):
            raise self.bad(path, f"{name!r} is not a valid volume name", "lower-case letters, digits and '-'")
        fmt = table.get("format")
        if fmt not in DATA_FORMATS:
            raise self.bad((*path, "format"), f"expected a data image format, got {fmt!r}",
                           "one of: " + ", ".join(DATA_FORMATS))
        mariadb = None
        if "mariadb" in table:
            spec = self.table(table["mariadb"], (*path, "mariadb"), 'mariadb = { seed = "db/seed.sql" }')
            for key in spec:
                if key not in MARIADB_FIELDS:
                    raise self.bad((*path, "mariadb", key), "unknown field",
                                   "allowed: " + ", ".join(sorted(MARIADB_FIELDS)), "unknown-field")
            seeds = spec.get("seed")
            if isinstance(seeds, str):
                seeds = [seeds]
            if not isinstance(seeds, list) or not seeds or not all(isinstance(x, str) for x in seeds):
                raise self.bad((*path, "mariadb", "seed"), "expected an SQL file or a list of them, run in order",
                               'seed = ["db/schema.sql", "db/seed.sql"]', "missing-field")
            for seed in seeds:
                if not (self.file.parent / seed).is_file():
                    raise self.bad((*path, "mariadb", "seed"), f"seed SQL {seed!r} not found",
                                   f"write {self.file.parent / seed}", "not-found")
            engine = self.string(spec, (*path, "mariadb", "engine"), '"Aria"') or "Aria"
            if engine not in ("Aria", "MyISAM"):
                raise self.bad((*path, "mariadb", "engine"), f"engine {engine!r} is not supported",
                               "Aria or MyISAM (InnoDB hangs at start-up on Rumprun)")
            datadir = self.string(spec, (*path, "mariadb", "datadir"), '"db"').strip("/")
            if datadir and (".." in datadir.split("/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", datadir)):
                raise self.bad((*path, "mariadb", "datadir"), f"{datadir!r} is not a directory inside the image",
                               'datadir = "db"')
            if "tree" in table:
                raise self.bad((*path, "tree"), "a bootstrapped volume's content is the data directory",
                               "remove tree (use files = {…} for extra files)")
            mariadb = {"seed": tuple(seeds), "engine": engine, "datadir": datadir}
        rest = {k: v for k, v in table.items() if k != "mariadb"}
        return VolumeSpec(name, rest, self.origin(*path), mariadb)
