"""Publishing images: build an ``[image.NAME]`` OCI layout and push it to a registry.

    report = push_image("examples/multiboot", "hello-oci", "registry.example.com/hello:v1",
                        credentials=credentials_from_env(os.environ))

The image is built through :class:`ukbuild.api.Build` like any target (so a
cached build pushes at once), read back from the output directory with
every blob verified, and pushed with its referrers (build record, SBOM)
through :class:`ukbuild.oci.registry.RegistryClient`: blobs the registry
has are skipped, and registries without the referrers API get the
``sha256-<hex>`` tag index instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .errors import BuildError, ConfigError
from .images import ImageSpec
from .model import Project
from .oci.layout import read_oci_layout, read_referrers
from .oci.registry import Credentials, PushReport, RegistryClient

if TYPE_CHECKING:
    from .api import BuildOptions

__all__ = ["Credentials", "PushReport", "Reference", "credentials_from_env", "parse_reference", "push_image",
           "push_layout"]

USER_VAR = "UKBUILD_REGISTRY_USER"
PASSWORD_VAR = "UKBUILD_REGISTRY_PASSWORD"

_REFERENCE_RE = re.compile(
    r"(?P<host>(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?)/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[^:@/]+))?\Z"
)


@attrs.frozen
class Reference:
    """Where to push: ``host[:port]/repository[:tag]``."""

    host: str
    repository: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}" + (f":{self.tag}" if self.tag else "")


def parse_reference(text: str) -> Reference:
    """Parse ``host[:port]/repository[:tag]``; the host is never implied (no Docker Hub default)."""
    hint = "write host[:port]/repository[:tag], e.g. 127.0.0.1:5000/hello:v1 or registry.example.com/team/hello"
    if "@" in text:
        raise ConfigError(f"registry reference {text!r}: digests and user@ are not accepted here", hint=hint,
                          reason="bad-reference")
    match = _REFERENCE_RE.match(text)
    if match is None:
        raise ConfigError(f"registry reference {text!r} is not host[:port]/repository[:tag]", hint=hint,
                          reason="bad-reference")
    host = match["host"]
    if "." not in host and ":" not in host and host != "localhost":
        raise ConfigError(f"registry reference {text!r} starts with {host!r}, which is not a registry host",
                          hint=hint + " (a host has a '.', a ':port' or is localhost)", reason="bad-reference")
    return Reference(host, match["repository"], match["tag"])


def credentials_from_env(environ: Mapping[str, str]) -> Credentials | None:
    """Basic-auth credentials from ``UKBUILD_REGISTRY_USER``/``UKBUILD_REGISTRY_PASSWORD``, if set."""
    user, password = environ.get(USER_VAR, ""), environ.get(PASSWORD_VAR, "")
    if not user and not password:
        return None
    if not user or not password:
        missing = USER_VAR if not user else PASSWORD_VAR
        raise ConfigError(f"{missing} is not set, but {PASSWORD_VAR if not user else USER_VAR} is",
                          hint="set both, or neither for an anonymous push", reason="bad-credentials")
    return Credentials(user, password)


def push_layout(
    layout: Path | str,
    layout_tag: str,
    reference: str | Reference,
    *,
    credentials: Credentials | None = None,
    insecure: bool = False,
    ca_file: Path | str | None = None,
) -> PushReport:
    """Push the image tagged ``layout_tag`` in an OCI layout, with its referrers.

    The remote tag defaults to ``layout_tag``.
    """
    ref = reference if isinstance(reference, Reference) else parse_reference(reference)
    target = read_oci_layout(layout, layout_tag)
    client = RegistryClient(ref.host, credentials=credentials, insecure=insecure, ca_file=ca_file)
    return client.push(ref.repository, ref.tag or layout_tag, target, referrers=read_referrers(layout, target))


def push_image(
    project: Project | str | os.PathLike[str],
    image_name: str,
    reference: str,
    *,
    options: BuildOptions | None = None,
    credentials: Credentials | None = None,
    insecure: bool = False,
    ca_file: Path | str | None = None,
) -> PushReport:
    """Build ``[image.IMAGE_NAME]`` (format ``oci``) and push it to ``reference``.

    The reference is checked before anything is built; a failed build raises its first error.
    """
    from .api import Build, load_project

    ref = parse_reference(reference)
    if not isinstance(project, Project):
        project = load_project(os.fspath(project))
    spec = project.images.get(image_name)
    if not isinstance(spec, ImageSpec):
        images = ", ".join(sorted(project.images)) or "none"
        raise ConfigError(f"no image named '{image_name}' in project {project.name}",
                          hint=f"images here: {images}", reason="unknown-target")
    if spec.format != "oci" or spec.tag is None:
        raise ConfigError(f"{spec.origin}: image.{image_name}: format {spec.format!r} cannot be pushed",
                          hint='push an image with format = "oci" (an OCI layout)', reason="bad-value")
    result = Build(project, [image_name], options).run()
    if not result.ok:
        errors = result.errors
        raise errors[0] if errors else BuildError(f"building {image_name} failed", reason="build-failed")
    layout = result.out_dir / spec.output.rstrip("/")
    return push_layout(layout, spec.tag, ref, credentials=credentials, insecure=insecure, ca_file=ca_file)
