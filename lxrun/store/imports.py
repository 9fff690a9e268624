"""`lxrun stack import NAME SOURCE`: an image becomes a stack version, layer for layer.

Each layer tar is unpacked (lxrun.store.unpack, the one reader of untrusted layer tars) into its own
layer directory named by its diff_id, the digest of its uncompressed tar: two images sharing a base
share its layers in the store, and a layer already there is not read again. A layer is unpacked in
a private directory under tmp/ while its bytes are hashed, and committed with one rename only once
its digests match the ones the image names; the version (layers, env, labels, the image's config)
is recorded after every layer is in, and promoted. So a refused or interrupted import leaves no
layer and no version of its own; a run/ record holds its layers from gc until the version names them.
The version is the image id's first 12 hex digits: a re-import of the same image changes nothing.
Each layer keeps its tar's split (lxrun.store.tarsplit), so an export writes the very same tar again.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
import zlib
from typing import IO, cast

from lxrun.errors import StoreError
from lxrun.record import Record
from lxrun.spec import check_stack_ref
from lxrun.store import registry
from lxrun.store.imageconfig import from_image
from lxrun.store.imagesource import STEP, Image, Layer, open_image
from lxrun.store.inflight import build_record
from lxrun.store.layers import LayerStore
from lxrun.store.stacks import StackStore, StackVersion, version_conflict
from lxrun.store.tarsplit import SPLIT_FILE, SplitRecorder
from lxrun.store.unpack import Budget, Refused, unpack

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lxrun.layout import Layout

DEFAULT_MAX_SIZE = 64 << 30  # bytes of uncompressed layers one import may unpack
DAEMON = "docker-daemon:"
DOCKER_API_VERSION = "1.41"  # docker.io 20.10's; fixed, so no round trip to ask
GZIP_MAGIC = b"\x1f\x8b"
DRAIN_CHUNK = 1 << 20


class Imported(Record):
    """What an import did: the version, and how many of its layers it stored (0: all were there)."""

    __slots__ = ("stored", "version")
    version: StackVersion
    stored: int

    def __init__(self, version: StackVersion, stored: int) -> None:
        super().__init__(version=version, stored=stored)


class Hashing:
    """A reader that hashes (and, given a budget, counts) what passes through it."""

    def __init__(self, raw: IO[bytes], budget: Budget | None = None) -> None:
        self.raw = raw
        self.budget = budget
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        if self.budget is not None:
            self.budget.spend(len(data))
        return data

    def drain(self) -> str:
        """Read to the end (a tar's trailing blocks are part of its digest); the digest."""
        while self.read(DRAIN_CHUNK):
            pass
        return f"sha256:{self.sha256.hexdigest()}"


def unpack_layer(layer: Layer, work: str, budget: Budget) -> None:
    """Unpack `layer` into `work`/rootfs, its tar's split beside it (lxrun.store.tarsplit), checking its
    blob's and its tar's digests; Refused if they differ."""
    with layer.open() as raw:
        blob = Hashing(raw)
        compressed = raw.peek(2)[:2] == GZIP_MAGIC if hasattr(raw, "peek") else False
        plain = gzip.GzipFile(fileobj=cast("IO[bytes]", blob), mode="rb") if compressed else blob
        tar = Hashing(cast("IO[bytes]", plain), budget)
        split = SplitRecorder(cast("IO[bytes]", tar), f"{work}/{SPLIT_FILE}")
        try:
            unpack(cast("IO[bytes]", split), f"{work}/rootfs", split)
            split.drain()
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise Refused(f"can't be decompressed: {exc}") from exc
        finally:
            split.close()
        diff_id = f"sha256:{tar.sha256.hexdigest()}"
        blob_digest = blob.drain()
    if layer.blob_digest is not None and blob_digest != layer.blob_digest:
        raise Refused(f"has digest {blob_digest}, not {layer.blob_digest} as its manifest says (corrupt or tampered)")
    if diff_id != layer.diff_id:
        raise Refused(f"has digest {diff_id}, not {layer.diff_id} as its config says (corrupt or tampered)")


def store_layers(image: Image, layout: Layout, budget: Budget, report: Callable[[str], None]) -> int:
    """Every layer of `image` not in the store yet, unpacked and committed; how many."""
    layers = LayerStore(layout)
    stored, parent = 0, None
    for number, layer in enumerate(image.layers, start=1):
        digest = layer.diff_id.removeprefix("sha256:")
        where = f"layer {number}/{len(image.layers)} ({digest[:12]})"
        if layers.exists(digest):
            report(f"{where}: already stored")
        else:
            report(f"{where}: unpacking")
            with layers.building() as work:
                try:
                    unpack_layer(layer, work, budget)
                except Refused as exc:
                    raise StoreError(STEP, f"{where} {exc}", path=image.source, hint="nothing of it was kept") from exc
                except StoreError as exc:
                    raise StoreError(STEP, f"{where}: {exc.reason}", path=image.source) from exc
                layers.commit(work, digest, parent=parent, kind="image", source=image.source)
            stored += 1
        parent = digest
    return stored


def last_of_each(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """The layers with a diff_id listed twice (docker's empty layers often are) kept once, where it is
    listed last: overlayfs refuses a lower dir twice, and the same tree lower down adds nothing to
    what its copy on top shows (every path it has, the top copy has; the rest falls through)."""
    last = {layer.diff_id: index for index, layer in enumerate(layers)}
    return tuple(layer for index, layer in enumerate(layers) if last[layer.diff_id] == index)


@contextlib.contextmanager
def local_source(source: str, layout: Layout, platform: str | None = None, insecure: bool = False) -> Iterator[str]:
    """A path to read `source` from: itself; for docker-daemon:IMAGE the image as `docker save` streams
    it from the daemon (DOCKER_HOST) into a file under tmp/; for docker://REF the image as skopeo
    copies it from its registry into an OCI layout under tmp/ (lxrun.store.registry). Removed afterwards."""
    if source.startswith(registry.PREFIX):
        with registry.fetched(source, layout, platform, insecure) as path:
            yield path
        return
    if not source.startswith(DAEMON):
        yield source
        return
    import docker
    import docker.errors
    import requests.exceptions

    image = source.removeprefix(DAEMON)
    layout.ensure()
    with tempfile.NamedTemporaryFile(dir=layout.tmp, prefix="import-", suffix=".tar") as saved:
        try:
            with contextlib.closing(docker.from_env(version=DOCKER_API_VERSION)) as client:
                for chunk in client.api.get_image(image):
                    saved.write(chunk)
        except docker.errors.APIError as exc:
            raise StoreError(STEP, str(exc.explanation or exc), path=source) from exc
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise StoreError(STEP, f"no dockerd at {where}: {type(exc).__name__}", path=source) from exc
        saved.flush()
        yield saved.name


def import_image(
    layout: Layout,
    name: str,
    source: str,
    *,
    platform: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    promote: bool = True,
    insecure: bool = False,
    report: Callable[[str], None] | None = None,
) -> Imported:
    """Import the image at `source` (a docker save tarball, an OCI layout dir or tar,
    docker-daemon:IMAGE or docker://REGISTRY/REPO:TAG) as stack `name`. `insecure`: a registry may
    be reached over plain HTTP or unverified TLS."""
    if check_stack_ref(name)[1] is not None:
        raise StoreError(STEP, "takes a stack NAME, not NAME@VERSION", path=name, hint="the version is the image id")
    say = report or (lambda _line: None)
    stacks = StackStore(layout)
    with local_source(source, layout, platform, insecure) as path, open_image(path, platform) as opened:
        image = opened.replace(
            source=source if path != source else os.path.abspath(source), layers=last_of_each(opened.layers)
        )
        config, env, labels = from_image(image.source, image.config_digest, image.config)
        chain = tuple(layer.diff_id.removeprefix("sha256:") for layer in image.layers)
        version = image.config_digest.removeprefix("sha256:")[:12]
        stored = 0
        if stacks.has_version(name, version):
            existing = stacks.version(name, version)
            if existing.layers != chain:
                raise version_conflict(name, version)
            result = existing
        else:
            with build_record(layout, f"{name}@{version}", f"{name}@{version}", chain):
                stored = store_layers(image, layout, Budget(max_size), say)
                result = stacks.add_version(StackVersion(name, version, chain, env, labels, image=config))
        if promote or stacks.current_or_none(name) is None:
            stacks.promote(name, version)
    return Imported(result, stored)
