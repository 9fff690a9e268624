"""`lxrun stack export NAME[@VERSION] DEST`: a stack version goes out as an image docker or podman runs.

Each layer of the version becomes one image layer, uncompressed, named by its digest: an imported
layer's own tar again (lxrun.store.tarsplit: the same digest, so the same layer for docker), others
written from their tree (lxrun.store.layertar: whiteouts and opaque directories back as `.wh.`
entries). The image config carries the version's env and labels and, for a stack imported from an
image (or built on one), its Entrypoint, Cmd, WorkingDir and User. Two formats:
- `docker`: a `docker save` tarball (manifest.json, the config, blobs/sha256/<layer>), for `docker load`;
- `oci`: an OCI image layout, a directory, or a tar of one when DEST ends in `.tar`.
Everything is written in a staging directory beside DEST and renamed into place at the end, so
DEST is whole or absent; a run/ record holds the version's layers from gc meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import tarfile
import tempfile
import time

from lxrun.errors import StoreError
from lxrun.plan import DEFAULT_PATH
from lxrun.record import Record
from lxrun.spec import check_stack_ref
from lxrun.store.imagesource import host_platform_name
from lxrun.store.inflight import build_record
from lxrun.store.layertar import HashingWriter, write_layer
from lxrun.store.stacks import StackStore, StackVersion
from lxrun.store.tarsplit import replay

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from lxrun.layout import Layout

STEP = "stack export"
FORMATS = ("docker", "oci")
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
# docker's reference grammar: a lowercase repository path, a tag.
DOCKER_REPO = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class Exported(Record):
    """What an export wrote: the version, where, in which format, its tag and its layers' digests."""

    __slots__ = ("dest", "diff_ids", "format", "image_id", "tag", "version")
    version: StackVersion
    dest: str
    format: str
    tag: str | None
    image_id: str
    diff_ids: tuple[str, ...]

    def __init__(
        self, version: StackVersion, dest: str, format: str, tag: str | None, image_id: str, diff_ids: tuple[str, ...]
    ) -> None:
        super().__init__(version=version, dest=dest, format=format, tag=tag, image_id=image_id, diff_ids=diff_ids)


def image_tag(stack: StackVersion, tag: str | None) -> str | None:
    """REPO:TAG to name the image by: `tag` as given (checked), else NAME:VERSION where docker takes
    that (a lowercase name), else none."""
    if tag is None:
        name, version = stack.name, stack.version
        return f"{name}:{version}" if DOCKER_REPO.fullmatch(name) and DOCKER_TAG.fullmatch(version) else None
    repo, _, version = tag.rpartition(":")
    if "/" in version or not repo:
        repo, version = tag, "latest"
    if not DOCKER_REPO.fullmatch(repo) or not DOCKER_TAG.fullmatch(version):
        raise StoreError(STEP, "is not a docker image name", path=tag, hint="e.g. team/python:1 (lowercase repository)")
    return f"{repo}:{version}"


def rfc3339(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def image_config(stack: StackVersion, diff_ids: list[str]) -> dict[str, Any]:
    """The OCI image config of `stack` with those layers."""
    env = {"PATH": DEFAULT_PATH, **stack.env}
    run: dict[str, Any] = {"Env": [f"{key}={value}" for key, value in env.items()]}
    image = stack.image
    if image is not None:
        if image.entrypoint is not None:
            run["Entrypoint"] = list(image.entrypoint)
        if image.cmd is not None:
            run["Cmd"] = list(image.cmd)
        if image.workdir:
            run["WorkingDir"] = image.workdir
        if image.user:
            run["User"] = image.user
    if stack.labels:
        run["Labels"] = dict(stack.labels)
    _, architecture = host_platform_name().split("/", 1)
    created = rfc3339(stack.created)
    return {
        "created": created,
        "architecture": architecture,
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"lxrun layer {digest[:12]}"} for digest in stack.layers],
    }


class Staging:
    """A directory beside DEST where the image is assembled: blobs by digest, then the index files."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(f"{path}/blobs/sha256")

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        with open(self.blob_path(digest), "wb") as file:
            file.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def blob_path(self, digest: str) -> str:
        return f"{self.path}/blobs/sha256/{digest.removeprefix('sha256:')}"

    def layer(self, layer_dir: str, name: str) -> dict[str, Any]:
        """Layer `name` (at `layer_dir`) as a tar blob: an imported layer's own tar again where its split
        gives back its digest, else its tree written out; its descriptor."""
        staged = f"{self.path}/blobs/sha256/.layer-{os.urandom(4).hex()}"
        with open(staged, "wb") as file:
            hashing = HashingWriter(file)
            try:
                replayed = replay(layer_dir, hashing)  # type: ignore[arg-type]  # a writer is all it needs
            except (OSError, EOFError, struct.error):  # the split or the tree is not what it was: write the tree
                replayed = False
            digest = f"sha256:{hashing.sha256.hexdigest()}"
            if not replayed or digest != f"sha256:{name}":
                file.seek(0)
                file.truncate()
                digest = write_layer(f"{layer_dir}/rootfs", file)
            size = file.tell()
        os.rename(staged, self.blob_path(digest))
        return {"mediaType": LAYER_TYPE, "digest": digest, "size": size}

    def write(self, name: str, data: dict[str, Any] | list[Any]) -> None:
        with open(f"{self.path}/{name}", "w") as file:
            json.dump(data, file)


def tar_directory(directory: str, names: list[str], dest: str, mtime: float) -> None:
    """`names` (files or directories of `directory`) into the tar `dest`, with neutral owners and times."""

    def neutral(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = int(mtime)
        return info

    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            tar.add(f"{directory}/{name}", arcname=name, filter=neutral)


def export_image(
    layout: Layout,
    ref: str,
    dest: str,
    *,
    format: str = "docker",
    tag: str | None = None,
    report: Callable[[str], None] | None = None,
) -> Exported:
    """Write stack version `ref` (NAME or NAME@VERSION) as an image at `dest` in `format`."""
    if format not in FORMATS:
        raise StoreError(STEP, f"format {format!r} is not one of {', '.join(FORMATS)}", path=dest)
    say = report or (lambda _line: None)
    stacks = StackStore(layout)
    name, version = check_stack_ref(ref)
    resolved = stacks.resolve(ref)
    stack = stacks.version(name, version or resolved.version)
    named = image_tag(stack, tag)
    dest = os.path.abspath(dest)
    as_tar = format == "docker" or dest.endswith(".tar")
    if os.path.lexists(dest):
        raise StoreError(STEP, "exists already", path=dest, hint="give a new path; an export never overwrites")
    if not os.path.isdir(os.path.dirname(dest)):
        raise StoreError(STEP, "is in a directory that does not exist", path=dest)
    with contextlib.ExitStack() as stack_of_cleanups:
        stack_of_cleanups.enter_context(build_record(layout, f"export {stack.ref}", stack.ref, stack.layers))
        staging_dir = tempfile.mkdtemp(dir=os.path.dirname(dest), prefix=f".{os.path.basename(dest)}.partial-")
        stack_of_cleanups.callback(shutil.rmtree, staging_dir, ignore_errors=True)
        staging = Staging(f"{staging_dir}/image")
        layers = []
        for number, (digest, rootfs) in enumerate(zip(stack.layers, resolved.layer_paths, strict=True), start=1):
            say(f"layer {number}/{len(stack.layers)} ({digest[:12]}): writing")
            layers.append(staging.layer(os.path.dirname(rootfs), digest))
        diff_ids = [layer["digest"] for layer in layers]
        config = staging.blob(json.dumps(image_config(stack, diff_ids)).encode(), CONFIG_TYPE)
        blobs = [f"blobs/sha256/{digest.removeprefix('sha256:')}" for digest in dict.fromkeys(diff_ids)]
        blobs.append(f"blobs/sha256/{config['digest'].removeprefix('sha256:')}")
        if format == "docker":
            staging.write(
                "manifest.json",
                [
                    {
                        "Config": blobs[-1],
                        "RepoTags": [named] if named else [],
                        "Layers": [f"blobs/sha256/{d.removeprefix('sha256:')}" for d in diff_ids],
                    }
                ],
            )
            names = ["blobs", "manifest.json"]
        else:
            manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": config, "layers": layers}
            descriptor = staging.blob(json.dumps(manifest).encode(), MANIFEST_TYPE)
            if named:
                descriptor["annotations"] = {REF_ANNOTATION: named.rpartition(":")[2]}
            staging.write("oci-layout", {"imageLayoutVersion": "1.0.0"})
            staging.write("index.json", {"schemaVersion": 2, "manifests": [descriptor]})
            names = ["oci-layout", "index.json", "blobs"]
        if as_tar:
            say(f"writing {dest}")
            tar_directory(staging.path, names, f"{staging_dir}/image.tar", stack.created)
            os.link(f"{staging_dir}/image.tar", dest)  # unlike a rename, never replaces what appeared there
        else:
            os.rename(staging.path, dest)
    return Exported(stack, dest, format, named, config["digest"], tuple(diff_ids))
