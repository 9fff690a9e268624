"""Immutable, content-addressed layer trees: layers/<digest>/rootfs plus layer.json.

A layer is built in a private directory under tmp/ and committed with one rename, so a layer
directory either is complete or does not exist; a failed or interrupted build leaves nothing there.
The private directory's name carries the builder's pid: if that process was killed outright (no
cleanup ran), `lxrun gc --layers` knows the directory is abandoned.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time

from lxrun.errors import StoreError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.layout import Layout

LAYER_META = "layer.json"
BUILDING_PREFIX = "layer-"
REMOVING_PREFIX = "removed-"


class LayerInfo(Record):
    __slots__ = ("created", "digest", "kind", "parent", "size", "source")
    digest: str
    parent: str | None
    kind: str  # "base" or "diff"
    source: str  # the spec it was built from, e.g. "rootfs/busybox.toml"
    size: int
    created: float

    def __init__(self, digest: str, parent: str | None, kind: str, source: str, size: int, created: float) -> None:
        super().__init__(digest=digest, parent=parent, kind=kind, source=source, size=size, created=created)


def tree_size(path: str) -> int:
    """Bytes used by the files of a tree (hard links counted once), as du would count them."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, dirnames, filenames in os.walk(path):
        for name in [directory, *(os.path.join(directory, entry) for entry in dirnames + filenames)]:
            st = os.lstat(name)
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


class LayerStore:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def rootfs(self, digest: str) -> str:
        return self.layout.layer_rootfs(digest)

    def exists(self, digest: str) -> bool:
        return os.path.isfile(f"{self.layout.layer(digest)}/{LAYER_META}")

    def info(self, digest: str) -> LayerInfo:
        try:
            with open(f"{self.layout.layer(digest)}/{LAYER_META}") as file:
                return LayerInfo(**json.load(file))
        except FileNotFoundError as exc:
            raise StoreError("layer", "not in the store", path=digest, hint="rebuild the stack that uses it") from exc

    @contextlib.contextmanager
    def building(self) -> Iterator[str]:
        """A private directory to build a layer in (its tree goes in `rootfs/`); removed unless committed."""
        self.layout.ensure()
        work = f"{self.layout.tmp}/{BUILDING_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        os.makedirs(f"{work}/rootfs", mode=0o755)
        try:
            yield work
        finally:
            if os.path.exists(work):
                shutil.rmtree(work)

    def digests(self) -> list[str]:
        """Every committed layer."""
        try:
            names = os.listdir(self.layout.layers)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if self.exists(name))

    def remove(self, digest: str) -> None:
        """Move the layer out of layers/ with one rename (so it vanishes whole), then delete it."""
        doomed = f"{self.layout.tmp}/{REMOVING_PREFIX}{digest}-{os.urandom(4).hex()}"
        os.rename(self.layout.layer(digest), doomed)
        shutil.rmtree(doomed)

    def abandoned(self) -> list[str]:
        """What killed processes left under tmp/: builds whose builder is gone, removals cut short."""
        found = []
        for name in os.listdir(self.layout.tmp) if os.path.isdir(self.layout.tmp) else ():
            pid = name.removeprefix(BUILDING_PREFIX).split("-")[0]
            building = name.startswith(BUILDING_PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}")
            if building or name.startswith(REMOVING_PREFIX):
                found.append(f"{self.layout.tmp}/{name}")
        return found

    def commit(self, work: str, digest: str, parent: str | None, kind: str, source: str) -> LayerInfo:
        """Seal a built tree as layer `digest`. If it already exists (a concurrent build won), keep that one."""
        info = LayerInfo(digest, parent, kind, source, tree_size(f"{work}/rootfs"), time.time())
        with open(f"{work}/{LAYER_META}", "w") as file:
            json.dump(info.as_dict(), file, indent=1)
        try:
            os.rename(work, self.layout.layer(digest))
        except OSError:
            if not self.exists(digest):
                raise
            return self.info(digest)
        return info
