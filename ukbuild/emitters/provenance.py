"""Provenance an OCI emitter attaches to an image: a build record and an SPDX 2.3 SBOM.

Both are built only from what the image action has staged (the kernel, extra
files, the options in its command and, when the core stages one, a closure
record of key documents, toolchain identities, source digests and
overrides), so they are as reproducible as the image.  They travel as
artifact manifests whose ``subject`` is the image: the image digest does
not depend on them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ukbuild.errors import EmitError
from ukbuild.oci.model import rfc3339

BUILD_RECORD_VERSION = 1
#: Namespace for the SPDX document names: the same image gives the same namespace.
_SPDX_NAMESPACE = uuid.UUID("6b0d5e0c-3f4e-5a54-9c55-6b6275696c64")


@attrs.frozen
class Material:
    """A staged input file of the image, by its path in the action."""

    path: str
    data: bytes = attrs.field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "digest": "sha256:" + self.sha256, "size": len(self.data)}


@attrs.frozen
class ImageFacts:
    """What the emitter knows about the image it writes."""

    image: str
    format: str
    unikernel: str
    kernel_format: str
    cmdline: str
    kernel: Material
    files: tuple[Material, ...] = ()
    options: Mapping[str, str] = attrs.field(factory=dict)
    epoch: int = 0
    closure: Mapping[str, Any] | None = None


def build_record(facts: ImageFacts) -> dict[str, Any]:
    """The ``application/vnd.ukbuild.buildinfo.v1+json`` document."""
    record: dict[str, Any] = {
        "ukbuildBuildRecord": BUILD_RECORD_VERSION,
        "image": {"name": facts.image, "format": facts.format, "options": dict(facts.options)},
        "unikernel": {
            "name": facts.unikernel,
            "kernelFormat": facts.kernel_format,
            "cmdline": facts.cmdline,
        },
        "materials": [facts.kernel.to_json(), *(f.to_json() for f in facts.files)],
        "sourceDateEpoch": facts.epoch,
    }
    if facts.closure is not None:
        record["closure"] = dict(facts.closure)
    return record


def toolchain_tools(closure: Mapping[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """(toolchain, tool, version, digest) from a closure record's ``toolchains``, sorted."""
    if closure is None:
        return []
    toolchains = closure.get("toolchains", {})
    found = []
    try:
        for name, toolchain in toolchains.items():
            for tool, identity in toolchain.get("tools", {}).items():
                found.append((str(name), str(tool), str(identity.get("version", "")), str(identity.get("digest", ""))))
    except AttributeError as exc:
        raise EmitError(
            "the closure record's toolchains are not {name: {tools: {tool: {version, digest}}}}",
            hint="this record is written by ukbuild itself; rebuild with a matching ukbuild",
            reason="bad-record",
        ) from exc
    return sorted(found)


def spdx_sbom(facts: ImageFacts) -> dict[str, Any]:
    """A minimal valid SPDX 2.3 JSON document: the unikernel package, its files, its toolchain."""
    kernel_id = "SPDXRef-Package-unikernel"
    files = [facts.kernel, *facts.files]
    seed = "\0".join([facts.image, facts.unikernel, *(f"{f.path}={f.sha256}" for f in files)])
    packages: list[dict[str, Any]] = [
        {
            "name": facts.unikernel,
            "SPDXID": kernel_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "checksums": [{"algorithm": "SHA256", "checksumValue": facts.kernel.sha256}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": f"{facts.kernel_format} kernel",
        }
    ]
    relationships: list[dict[str, str]] = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": kernel_id}
    ]
    spdx_files = []
    for index, material in enumerate(files):
        file_id = f"SPDXRef-File-{index}"
        spdx_files.append(
            {
                "fileName": "./" + material.path,
                "SPDXID": file_id,
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": hashlib.sha1(material.data).hexdigest()},
                    {"algorithm": "SHA256", "checksumValue": material.sha256},
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }
        )
        relationships.append({"spdxElementId": kernel_id, "relationshipType": "CONTAINS", "relatedSpdxElement": file_id})
    for index, (toolchain, tool, version, digest) in enumerate(toolchain_tools(facts.closure)):
        tool_id = f"SPDXRef-Tool-{index}"
        package: dict[str, Any] = {
            "name": tool,
            "SPDXID": tool_id,
            "versionInfo": version or "NOASSERTION",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "APPLICATION",
            "comment": f"tool of toolchain {toolchain}",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }
        if digest.startswith("sha256:"):
            package["checksums"] = [{"algorithm": "SHA256", "checksumValue": digest[7:]}]
        packages.append(package)
        relationships.append({"spdxElementId": tool_id, "relationshipType": "BUILD_TOOL_OF", "relatedSpdxElement": kernel_id})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{facts.image} ({facts.unikernel})",
        "documentNamespace": f"https://spdx.org/spdxdocs/ukbuild-{facts.image}-{uuid.uuid5(_SPDX_NAMESPACE, seed)}",
        "creationInfo": {"created": rfc3339(facts.epoch), "creators": ["Tool: ukbuild-emit"]},
        "packages": packages,
        "files": spdx_files,
        "relationships": relationships,
    }

