"""Disk accounting: what a stack version costs as its own diff, as a flattened image, and what N stacks
cost as shared layers next to N flattened images.

Sizes are the ones recorded when each layer was committed (du's count, hard links once). A
flattened image is counted as the sum of its layers: the files a diff replaced are counted twice
(a few hundred KB per diff, mostly dpkg's status and debconf's caches), as `docker export` of
the same chain would not; for images of hundreds of MB that is well under 1%.
"""

from __future__ import annotations

from lxrun.layout import Layout
from lxrun.record import Record
from lxrun.store.layers import LayerStore
from lxrun.store.stacks import StackStore, StackVersion


class StackCost(Record):
    """One version: `own` is its top layer (its diff, or the whole base), `flattened` all its layers;
    None where a layer is missing from the store."""

    __slots__ = ("current", "flattened", "layers", "own", "version")
    version: StackVersion
    current: bool
    layers: tuple[str, ...]
    own: int | None
    flattened: int | None

    def __init__(
        self, version: StackVersion, current: bool, layers: tuple[str, ...], own: int | None, flattened: int | None
    ) -> None:
        super().__init__(version=version, current=current, layers=layers, own=own, flattened=flattened)


class DiskUsage(Record):
    """The current version of every stack: stored as layers (each once) and as flattened images."""

    __slots__ = ("as_layers", "flattened", "stacks")
    stacks: tuple[StackCost, ...]
    as_layers: int
    flattened: int

    def __init__(self, stacks: tuple[StackCost, ...], as_layers: int, flattened: int) -> None:
        super().__init__(stacks=stacks, as_layers=as_layers, flattened=flattened)


class Accountant:
    def __init__(self, layout: Layout) -> None:
        self.stacks = StackStore(layout)
        self.layers = LayerStore(layout)
        self._sizes: dict[str, int | None] = {}

    def size(self, digest: str) -> int | None:
        if digest not in self._sizes:
            self._sizes[digest] = self.layers.info(digest).size if self.layers.exists(digest) else None
        return self._sizes[digest]

    def cost(self, version: StackVersion) -> StackCost:
        sizes = [self.size(digest) for digest in version.layers]
        known = [size for size in sizes if size is not None]
        return StackCost(
            version,
            self.stacks.current_or_none(version.name) == version.version,
            version.layers,
            sizes[-1],
            sum(known) if len(known) == len(sizes) else None,
        )

    def every_version(self) -> list[StackCost]:
        return [self.cost(version) for name in self.stacks.names() for version in self.stacks.versions(name)]

    def current(self) -> DiskUsage:
        costs = []
        for name in self.stacks.names():
            current = self.stacks.current_or_none(name)
            if current is not None:
                costs.append(self.cost(self.stacks.version(name, current)))
        unique = {digest for cost in costs for digest in cost.layers}
        as_layers = sum(self.size(digest) or 0 for digest in unique)
        return DiskUsage(tuple(costs), as_layers, sum(cost.flattened or 0 for cost in costs))
