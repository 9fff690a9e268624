"""A stack as a Docker image: its layers loaded as image layers (base, then each diff), loaded once.

No registry is involved: we write a `docker save` archive of our own layers and `docker load` it. Each
layer becomes one image layer, so images of stacks on the same base share that base inside Docker as
they share it in our store. The tag is derived from the stack's layer digests, so a stack version is
loaded once and a rebuilt stack gets a new image.

Each layer tar is written by lxrun.store.layertar (overlayfs's whiteouts and opaque directories
become OCI's `.wh.NAME` and `.wh..wh..opq`), as `lxrun stack export` writes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import platform
import tarfile
import tempfile

from lxrun.errors import SetupError
from lxrun.store.layertar import write_layer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

    from lxrun.store.stacks import ResolvedStack

REPOSITORY = "lxrun-stack"
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


def image_tag(stack: ResolvedStack) -> str:
    """`lxrun-stack:<sha256 of the layer digests, lowest first>`."""
    chain = hashlib.sha256("\n".join(stack.layers).encode()).hexdigest()
    return f"{REPOSITORY}:{chain}"


def write_archive(stack: ResolvedStack, tag: str, out: IO[bytes], scratch: str) -> None:
    """A `docker save` archive: one layer tar per stack layer, an image config, a manifest naming `tag`."""
    with tarfile.open(fileobj=out, mode="w|") as archive:
        diff_ids, layer_files = [], []
        for tree in stack.layer_paths:
            with tempfile.TemporaryFile(dir=scratch) as layer:
                diff_id = write_layer(tree, layer)
                name = f"{diff_id.removeprefix('sha256:')}/layer.tar"
                info = tarfile.TarInfo(name)
                info.size = layer.tell()
                layer.seek(0)
                archive.addfile(info, layer)
            diff_ids.append(diff_id)
            layer_files.append(name)
        config: dict[str, Any] = {
            "architecture": ARCHITECTURES.get(platform.machine(), platform.machine()),
            "os": "linux",
            "config": {"Labels": {"lxrun.stack": stack.ref, "lxrun.layers": ",".join(stack.layers)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"lxrun layer {digest}"} for digest in stack.layers],
        }
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": layer_files}]
        for name, data in ((config_name, config_bytes), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def ensure_image(api: Any, stack: ResolvedStack, scratch: str) -> str:
    """The stack's image tag, loading the image first if Docker doesn't have it yet."""
    import docker.errors

    tag = image_tag(stack)
    with contextlib.suppress(docker.errors.ImageNotFound):
        api.inspect_image(tag)
        return tag
    with tempfile.TemporaryFile(dir=scratch) as archive:
        write_archive(stack, tag, archive, scratch)
        archive.seek(0)
        try:
            api.load_image(archive)
        except docker.errors.APIError as exc:
            raise SetupError("docker load", str(exc.explanation or exc), path=stack.ref) from exc
    return tag
