"""Images made by hand for the import tests: layer tars of chosen entries (hostile ones included), and
the `docker save` and OCI layout formats around them. No network, no docker needed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

Entry = tuple[tarfile.TarInfo, bytes]


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, **fields: Any) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = 1_700_000_000
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def file(name: str, data: bytes | str = b"", mode: int = 0o644, **fields: Any) -> Entry:
    return entry(name, tarfile.REGTYPE, data.encode() if isinstance(data, str) else data, mode, **fields)


def directory(name: str, mode: int = 0o755) -> Entry:
    return entry(name, tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str) -> Entry:
    return entry(name, tarfile.SYMTYPE, mode=0o777, linkname=target)


def hardlink(name: str, target: str) -> Entry:
    return entry(name, tarfile.LNKTYPE, linkname=target)


def whiteout(path: str) -> Entry:
    parent, _, name = path.rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}", mode=0o600)


def opaque(directory_path: str) -> Entry:
    return file(f"{directory_path}/.wh..wh..opq", mode=0o600)


def layer_tar(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def busybox_layer() -> bytes:
    """A whole rootfs: the host's static busybox with the applets the tests use."""
    entries = [directory("bin"), file("bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755)]
    entries += [
        symlink(f"bin/{applet}", "busybox")
        for applet in ("sh", "ls", "cat", "id", "pwd", "env", "echo", "mkdir", "rm", "find", "sort")
    ]
    entries += [
        directory("etc"),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
    ]
    entries += [file("etc/group", "root:x:0:\napp:x:1000:\nstaff:x:50:\n")]
    return layer_tar(entries)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(layers: list[bytes], **run: Any) -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
    }


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(
    path: Path, layers: list[bytes], config: dict[str, Any] | None = None, tag: str = "test:latest"
) -> Path:
    """A `docker save` tarball of the layers (as docker 20.10 writes one)."""
    config = config if config is not None else image_config(layers)
    config_bytes = json.dumps(config).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    names = [f"{hashlib.sha256(layer).hexdigest()}/layer.tar" for layer in layers]
    with tarfile.open(path, "w") as tar:
        for name, layer in zip(names, layers, strict=True):
            add_bytes(tar, name, layer)
        add_bytes(tar, config_name, config_bytes)
        add_bytes(
            tar, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode()
        )
    return path


def blob_path(digest: str) -> str:
    """Where an OCI layout keeps the blob of `digest`."""
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def blob(root: Path, data: bytes) -> dict[str, Any]:
    digest = sha256(data)
    target = root / "blobs/sha256" / digest.removeprefix("sha256:")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def oci_manifest(root: Path, layers: list[bytes], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Blobs of a gzip-layered image under `root`; its manifest's descriptor."""
    config = config if config is not None else image_config(layers)
    layer_descriptors = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(root, gzip.compress(layer, mtime=0))}
        for layer in layers
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(root, json.dumps(config).encode())},
        "layers": layer_descriptors,
    }
    return {"mediaType": manifest["mediaType"], **blob(root, json.dumps(manifest).encode())}


def oci_layout(root: Path, manifests: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return root


def two_platform_layout(root: Path, amd64_layers: list[bytes], arm64_layers: list[bytes]) -> Path:
    """An OCI layout whose index lists one image for linux/amd64 and one for linux/arm64/v8."""
    amd64, arm64 = oci_manifest(root, amd64_layers), oci_manifest(root, arm64_layers)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**amd64, "platform": {"os": "linux", "architecture": "amd64"}},
            {**arm64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    }
    return oci_layout(root, [{"mediaType": index["mediaType"], **blob(root, json.dumps(index).encode())}])


def tar_of(directory: Path, path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        for name in sorted(os.listdir(directory)):
            tar.add(directory / name, arcname=name)
    return path
