"""Where an imported image comes from: a `docker save` tarball or an OCI image layout (a directory or a
tar of one), read into one `Image`: its config and its layers in order, each with the digests its
bytes must have.

Nothing here is trusted. A layout directory's files are read without following symlinks (regular
files only). Every blob an OCI manifest names is checked against its digest when read (the config
here, the layers as they stream); a docker archive's config is checked against the digest its file
name carries, and every layer against the diff_id its config lists. Multi-platform indexes resolve
to the host's platform, or the one asked for (`os/arch[/variant]`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import platform as host_platform
import re
import stat
import tarfile

from lxrun.errors import StoreError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO, Any

STEP = "stack import"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
NAMED_BY_DIGEST = re.compile(r"(?:^|/)(?:sha256[:/])?([0-9a-f]{64})(?:\.json)?$")
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MAX_JSON = 16 << 20  # a manifest, index or config bigger than this is not one


def host_platform_name() -> str:
    machine = host_platform.machine()
    return f"linux/{ARCHITECTURES.get(machine, machine)}"


class Layer(Record):
    """One layer: the digest of its uncompressed tar (`diff_id`), that of its blob as stored (None
    where the source names none: a docker archive), and how to open the blob."""

    __slots__ = ("blob_digest", "diff_id", "open")
    diff_id: str
    blob_digest: str | None
    open: Callable[[], IO[bytes]]

    def __init__(self, diff_id: str, blob_digest: str | None, open: Callable[[], IO[bytes]]) -> None:
        super().__init__(diff_id=diff_id, blob_digest=blob_digest, open=open)


class Image(Record):
    """An image read from `source`: its config (parsed; `config_digest` is the image id) and layers."""

    __slots__ = ("config", "config_digest", "layers", "source")
    source: str
    config: dict[str, Any]
    config_digest: str
    layers: tuple[Layer, ...]

    def __init__(self, source: str, config: dict[str, Any], config_digest: str, layers: tuple[Layer, ...]) -> None:
        super().__init__(source=source, config=config, config_digest=config_digest, layers=layers)


def refused(source: str, reason: str, hint: str | None = None) -> StoreError:
    return StoreError(STEP, reason, path=source, hint=hint)


def is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_beneath(directory: str, name: str) -> IO[bytes]:
    """The regular file `name` of `directory`, read without following a symlink on the way (the
    directory itself is the caller's; what is inside it is the image's): a layout can't make lxrun
    read the host's files, nor hang it on a FIFO or a device."""
    parts = name.split("/")
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:  # ELOOP for a symlink at the end, ENOTDIR on the way (O_DIRECTORY)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and is_symlink(part, fd):
                    where = "/".join(parts[: index + 1])
                    raise refused(directory, f"{where} is a symlink", hint="an image layout holds plain files") from exc
                raise
            os.close(fd)
            fd = inner
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise refused(directory, f"{name} is not a regular file")
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return file


class Bundle:
    """The files of an image source: a directory's, or a tar's members (read in place)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if not os.path.isdir(path):
            try:
                self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close(), from open_image)
                self.members = {os.path.normpath(member.name): member for member in self.tar.getmembers()}
            except tarfile.TarError as exc:
                raise refused(path, f"is not a tar, nor a directory: {exc}") from exc
            except EOFError as exc:
                raise refused(path, f"is truncated: {exc}") from exc

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def has(self, name: str) -> bool:
        if self.tar is not None:
            return name in self.members
        try:
            self.open(name).close()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def open(self, name: str) -> IO[bytes]:
        name = os.path.normpath(name)
        if name.startswith(("/", "..")):
            raise refused(self.path, f"names a file outside the image: {name}")
        if self.tar is None:
            return open_beneath(self.path, name)
        member = self.members.get(name)
        stream = self.tar.extractfile(member) if member is not None else None
        if stream is None:
            raise refused(self.path, f"has no file {name}", hint="an incomplete or truncated image")
        return stream

    def read(self, name: str, digest: str | None = None) -> bytes:
        """A small file, checked against `digest` when given."""
        try:
            with self.open(name) as file:
                data = file.read(MAX_JSON + 1)
        except FileNotFoundError as exc:
            raise refused(self.path, f"has no file {name}", hint="an incomplete image") from exc
        except (tarfile.TarError, EOFError) as exc:
            raise refused(self.path, f"{name} can't be read: {exc}", hint="a truncated tarball?") from exc
        if len(data) > MAX_JSON:
            raise refused(self.path, f"{name} is larger than {MAX_JSON} bytes")
        if digest is not None:
            found = f"sha256:{hashlib.sha256(data).hexdigest()}"
            if found != digest:
                raise refused(self.path, f"{name} has digest {found}, not {digest}", hint="corrupt or tampered")
        return data

    def json(self, name: str, digest: str | None = None) -> Any:
        try:
            return json.loads(self.read(name, digest))
        except ValueError as exc:
            raise refused(self.path, f"{name} is not valid JSON: {exc}") from exc


def check_digest(source: str, what: str, value: object) -> str:
    if not isinstance(value, str) or not DIGEST.fullmatch(value):
        raise refused(source, f"{what} {str(value)[:80]!r} is not a sha256 digest")
    return value


def blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def diff_ids(source: str, config: Any, count: int) -> list[str]:
    try:
        ids = config["rootfs"]["diff_ids"]
    except (KeyError, TypeError) as exc:
        raise refused(source, "its image config has no rootfs.diff_ids") from exc
    if not isinstance(ids, list) or len(ids) != count:
        raise refused(
            source, f"its config lists {len(ids) if isinstance(ids, list) else 0} layers, its manifest {count}"
        )
    return [check_digest(source, "diff_id", value) for value in ids]


def docker_archive(source: str, bundle: Bundle) -> Image:
    manifest = bundle.json("manifest.json")
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        count = len(manifest) if isinstance(manifest, list) else 0
        raise refused(source, f"holds {count} images, not one", hint="`docker save` one image per tarball")
    entry = manifest[0]
    config_name, layer_names = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise refused(source, "manifest.json lacks Config or Layers")
    named = NAMED_BY_DIGEST.search(config_name)
    config_digest = f"sha256:{named.group(1)}" if named else None
    config_bytes = bundle.read(config_name, config_digest)
    config = parse_config(source, config_bytes)
    ids = diff_ids(source, config, len(layer_names))
    layers = []
    for name, diff_id in zip(layer_names, ids, strict=True):
        if not isinstance(name, str):
            raise refused(source, "manifest.json names a layer with something other than a path")
        layers.append(Layer(diff_id, None, functools.partial(bundle.open, name)))
    digest = config_digest or f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"
    return Image(source, config, digest, tuple(layers))


def parse_config(source: str, data: bytes) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except ValueError as exc:
        raise refused(source, f"its image config is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise refused(source, "its image config is not a JSON object")
    return config


def matches(descriptor: dict[str, Any], wanted: str) -> bool:
    found = descriptor.get("platform")
    if not isinstance(found, dict):
        return False
    parts = [str(found.get("os")), str(found.get("architecture"))]
    if found.get("variant") and wanted.count("/") == 2:
        parts.append(str(found["variant"]))
    return "/".join(parts) == wanted


def choose(source: str, descriptors: Any, wanted: str | None) -> dict[str, Any]:
    """The manifest to import from an index's list: the only one, or the one for the platform."""
    if not isinstance(descriptors, list) or not descriptors or not all(isinstance(d, dict) for d in descriptors):
        raise refused(source, "its index lists no manifests")
    first: dict[str, Any] = descriptors[0]
    if len(descriptors) == 1 and (wanted is None or "platform" not in first):
        return first  # one image (or a tag naming a platform list): what else could it be
    platform = wanted or host_platform_name()
    found = [descriptor for descriptor in descriptors if matches(descriptor, platform)]
    if len(found) != 1:
        offered = sorted({"/".join(str(v) for v in d.get("platform", {}).values()) or "?" for d in descriptors})
        raise refused(source, f"has {len(found)} images for {platform}", hint=f"choose a --platform of {offered}")
    chosen: dict[str, Any] = found[0]
    return chosen


def oci_layout(source: str, bundle: Bundle, wanted: str | None) -> Image:
    descriptor = choose(source, bundle.json("index.json").get("manifests"), wanted)
    for _depth in range(4):  # an index may name an index (a platform list behind a tag)
        digest = check_digest(source, "manifest digest", descriptor.get("digest"))
        manifest = bundle.json(blob_name(digest), digest)
        if not isinstance(manifest, dict):
            raise refused(source, f"manifest {digest} is not a JSON object")
        if descriptor.get("mediaType") not in INDEX_TYPES and "manifests" not in manifest:
            break
        descriptor = choose(source, manifest.get("manifests"), wanted)
    else:
        raise refused(source, "its indexes nest too deep")
    config_descriptor, layer_descriptors = manifest.get("config"), manifest.get("layers")
    if not isinstance(config_descriptor, dict) or not isinstance(layer_descriptors, list):
        raise refused(source, f"manifest {digest} lacks config or layers")
    config_digest = check_digest(source, "config digest", config_descriptor.get("digest"))
    config = parse_config(source, bundle.read(blob_name(config_digest), config_digest))
    ids = diff_ids(source, config, len(layer_descriptors))
    layers = []
    for descriptor, diff_id in zip(layer_descriptors, ids, strict=True):
        blob = check_digest(source, "layer digest", descriptor.get("digest") if isinstance(descriptor, dict) else None)
        if "zstd" in str(descriptor.get("mediaType")):
            raise refused(source, f"layer {blob} is zstd-compressed", hint="lxrun reads plain and gzip layers")
        layers.append(Layer(diff_id, blob, functools.partial(bundle.open, blob_name(blob))))
    return Image(source, config, config_digest, tuple(layers))


@contextlib.contextmanager
def open_image(path: str, platform: str | None = None) -> Iterator[Image]:
    """The image in the docker archive or OCI layout at `path` (a directory or a tar)."""
    if not os.path.exists(path):
        raise refused(path, "does not exist", hint="give a `docker save` tarball or an OCI image layout")
    bundle = Bundle(path)
    try:
        if bundle.has("manifest.json"):
            yield docker_archive(path, bundle)
        elif bundle.has("index.json"):
            yield oci_layout(path, bundle, platform)
        else:
            raise refused(
                path, "is neither a docker save tarball nor an OCI image layout (no manifest.json, index.json)"
            )
    finally:
        bundle.close()
