"""The images `hack/images build` makes (buildah, no Docker engine), read from their OCI archives.

`built_images()` builds what changed (cold: several minutes; warm: under a second) and returns
each image's OCI archive; `OciImage` reads an archive without any container tool: its
configuration and the file tree its layers add up to (whiteouts applied).
"""

from __future__ import annotations

import json
import posixpath
import subprocess
import tarfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tests.support.chart import REPO_ROOT

HACK_IMAGES = REPO_ROOT / "hack" / "images"


class ImageBuildError(RuntimeError):
    """`hack/images build` failed; the message holds its log lines."""


def built_images() -> dict[str, Path]:
    """Image name (`operator`, `workers`) -> its OCI archive, built by `hack/images build`.

    Raises ImageBuildError with the script's output when a build fails.
    """
    proc = subprocess.run(
        [str(HACK_IMAGES), "build"], capture_output=True, text=True, check=False, timeout=3600
    )
    if proc.returncode != 0:
        raise ImageBuildError(f"hack/images build failed:\n{proc.stdout}\n{proc.stderr}")
    archives = [Path(line) for line in proc.stdout.split()]
    return {path.name.split("-")[1]: path for path in archives}


def image_refs() -> dict[str, str]:
    """Image name -> its reference, `docker.io/library/cj-<name>:<appVersion>`."""
    proc = subprocess.run(
        [str(HACK_IMAGES), "refs"], capture_output=True, text=True, check=True, timeout=60
    )
    refs = proc.stdout.split()
    return {ref.rsplit("/", 1)[-1].split(":")[0].removeprefix("cj-"): ref for ref in refs}


def containers_environ() -> dict[str, str]:
    """CONTAINERS_CONF and CONTAINERS_STORAGE_CONF of the project's podman/buildah set-up."""
    proc = subprocess.run(
        [str(HACK_IMAGES), "env"], capture_output=True, text=True, check=True, timeout=60
    )
    pairs = (line.removeprefix("export ").partition("=") for line in proc.stdout.splitlines())
    return {key: value for key, _, value in pairs}


@dataclass(frozen=True)
class FileEntry:
    """One path of the image's file tree: its type ('file', 'dir', 'symlink', ...), size in
    bytes and, for a symlink, its target."""

    kind: str
    size: int
    target: str = ""


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "file" if member.isfile() else "other"


class OciImage:
    """An image in an OCI archive (the `oci-archive:` layout buildah pushes: one manifest)."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive

    def _blob(self, tar: tarfile.TarFile, digest: str) -> Any:
        member = tar.extractfile("blobs/" + digest.replace(":", "/"))
        assert member is not None, f"{digest} is not in {self.archive}"
        return json.load(member)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The image manifest (config and layer descriptors)."""
        with tarfile.open(self.archive) as tar:
            index = self._blob_index(tar)
            (descriptor,) = index["manifests"]
            manifest: dict[str, Any] = self._blob(tar, descriptor["digest"])
            return manifest

    @staticmethod
    def _blob_index(tar: tarfile.TarFile) -> dict[str, Any]:
        member = tar.extractfile("index.json")
        assert member is not None
        index: dict[str, Any] = json.load(member)
        return index

    @cached_property
    def ref_name(self) -> str:
        """The reference the archive's index names (what `ctr images import` tags)."""
        with tarfile.open(self.archive) as tar:
            (descriptor,) = self._blob_index(tar)["manifests"]
            return str(descriptor["annotations"]["org.opencontainers.image.ref.name"])

    @cached_property
    def config(self) -> dict[str, Any]:
        """The runtime configuration (`User`, `Cmd`, `Env`, `WorkingDir`, `ExposedPorts`, ...)."""
        with tarfile.open(self.archive) as tar:
            blob: dict[str, Any] = self._blob(tar, self.manifest["config"]["digest"])
            return dict(blob["config"])

    @cached_property
    def files(self) -> dict[str, FileEntry]:
        """Path (no leading slash) -> entry, after applying every layer in order."""
        tree: dict[str, FileEntry] = {}
        with tarfile.open(self.archive) as outer:
            for layer in self.manifest["layers"]:
                blob = outer.extractfile("blobs/" + layer["digest"].replace(":", "/"))
                assert blob is not None
                with tarfile.open(fileobj=blob, mode="r|*") as tar:
                    for member in tar:
                        path = posixpath.normpath(member.name.lstrip("./") or ".")
                        folder, base = posixpath.split(path)
                        if base == ".wh..wh..opq":  # opaque folder: drop what lower layers had
                            prefix = folder + "/"
                            for key in [k for k in tree if k.startswith(prefix)]:
                                del tree[key]
                        elif base.startswith(".wh."):
                            gone = posixpath.join(folder, base.removeprefix(".wh."))
                            for key in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                                del tree[key]
                        else:
                            tree[path] = FileEntry(_kind(member), member.size, member.linkname)
        return tree

    @property
    def size_bytes(self) -> int:
        """Sum of the compressed layer sizes (what a registry stores and a node pulls)."""
        return sum(int(layer["size"]) for layer in self.manifest["layers"])

    def listdir(self, folder: str) -> set[str]:
        """Names directly inside `folder` (no leading slash)."""
        prefix = folder.rstrip("/") + "/"
        return {
            path[len(prefix) :]
            for path in self.files
            if path.startswith(prefix) and "/" not in path[len(prefix) :]
        }
