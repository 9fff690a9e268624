"""`lxrun gc --layers`: remove the layers no stack version references and no live task or build holds,
and what killed builds left behind (their directories under tmp/, their records in run/).

The order of the reads is what makes this safe next to a build: a build writes its run/ record
before it commits its layer and removes the record only after the version naming the layer is
written. So the layers are listed first, then the records read, then the versions: a layer in the
list is covered by a live record or by a version, whichever moment the build is at.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from lxrun.layout import Layout
from lxrun.record import Record
from lxrun.store.inflight import live_records, stale_build_records
from lxrun.store.layers import LayerStore
from lxrun.store.stacks import StackStore


class Collected(Record):
    __slots__ = ("abandoned", "bytes", "layers")
    layers: tuple[str, ...]
    bytes: int
    abandoned: tuple[str, ...]

    def __init__(self, layers: tuple[str, ...], bytes: int, abandoned: tuple[str, ...]) -> None:
        super().__init__(layers=layers, bytes=bytes, abandoned=abandoned)


def held_layers(layout: Layout) -> set[str]:
    """Every layer a version references or a live task or build holds."""
    stacks = StackStore(layout)
    held: set[str] = set()
    for record in live_records(layout):
        held.update(record.get("layers", ()))
        name, _, version = str(record.get("stack", "")).partition("@")
        if stacks.has_version(name, version):
            held.update(stacks.version(name, version).layers)
    for name in stacks.names():
        for stack in stacks.versions(name):
            held.update(stack.layers)
    return held


def collect_layers(layout: Layout) -> Collected:
    layers = LayerStore(layout)
    candidates = layers.digests()
    held = held_layers(layout)
    removed, freed = [], 0
    for digest in candidates:
        if digest not in held:
            freed += layers.info(digest).size
            layers.remove(digest)
            removed.append(digest)
    abandoned = layers.abandoned()
    for path in abandoned:
        shutil.rmtree(path, ignore_errors=True)
    for path in stale_build_records(layout):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        abandoned.append(path)
    return Collected(tuple(removed), freed, tuple(abandoned))
