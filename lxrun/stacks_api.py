"""Stacks on a state root, for `Runtime`: build (a stack or a base, from its spec's name or path), import
and export images, list, inspect, promote, roll back, remove, and what they cost on disk. Plain values
out, nothing printed: the store (lxrun.store) does the work, this module is its one door.

The task path never imports this module: `lxrun exec` pays nothing for it.
"""

from __future__ import annotations

from lxrun.errors import SpecError
from lxrun.record import Record
from lxrun.spec import check_stack_ref
from lxrun.store import bases, exports, imports, specs
from lxrun.store.builds import Built, build_stack, quiet
from lxrun.store.exports import Exported
from lxrun.store.imports import Imported
from lxrun.store.inflight import refs_in_use
from lxrun.store.layers import LayerInfo, LayerStore
from lxrun.store.stacks import StackStore, StackVersion
from lxrun.store.usage import Accountant, DiskUsage, StackCost

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from lxrun.layout import Layout

__all__ = [
    "Built",
    "DiskUsage",
    "Exported",
    "Imported",
    "LayerInfo",
    "StackCost",
    "StackDetails",
    "StackSwitch",
    "StackVersion",
]


class StackDetails(Record):
    """One version with its layers' records (lowest first), whether it is current, and its flattened
    size (None where a layer is missing)."""

    __slots__ = ("current", "layers", "stack", "total")
    stack: StackVersion
    current: bool
    layers: tuple[LayerInfo, ...]
    total: int | None

    def __init__(self, stack: StackVersion, current: bool, layers: tuple[LayerInfo, ...], total: int | None) -> None:
        super().__init__(stack=stack, current=current, layers=layers, total=total)

    def to_json(self) -> dict[str, Any]:
        """As JSON; `image` (its config and digest) only for a stack imported from an image."""
        data = {
            "name": self.stack.name,
            "version": self.stack.version,
            "current": self.current,
            "parent": self.stack.parent,
            "created": self.stack.created,
            "env": dict(self.stack.env),
            "labels": dict(self.stack.labels),
            "layers": [info.as_dict() for info in self.layers],
            "total": self.total,
        }
        if self.stack.image is not None:
            data["image"] = self.stack.image.to_json()
        return data


class StackSwitch(Record):
    """A promote or a rollback: stack `name`'s current version now, and before (None: it had none)."""

    __slots__ = ("current", "name", "previous")
    name: str
    current: str
    previous: str | None

    def __init__(self, name: str, current: str, previous: str | None) -> None:
        super().__init__(name=name, current=current, previous=previous)


def pinned(ref: str) -> tuple[str, str]:
    """NAME@VERSION -> (name, version); a bare NAME is refused (promote and rm name one version)."""
    name, version = check_stack_ref(ref)
    if version is None:
        raise SpecError("stack", "needs a version", path=ref, hint=f"give NAME@VERSION, e.g. {name}@1")
    return name, version


def build(layout: Layout, name: str, log_fd: int, report: Callable[[str], None] | None, promote: bool) -> Built:
    return build_stack(name, layout, log_fd=log_fd, report=report or quiet, promote=promote)


def build_base(layout: Layout, name: str, log_fd: int) -> StackVersion:
    return bases.build_base(specs.load_base_spec(specs.find_spec("rootfs", name)), layout, log_fd=log_fd)


def import_image(
    layout: Layout,
    name: str,
    source: str,
    platform: str | None,
    max_size: int | None,
    promote: bool,
    insecure: bool,
    report: Callable[[str], None] | None,
) -> Imported:
    size = imports.DEFAULT_MAX_SIZE if max_size is None else max_size
    return imports.import_image(
        layout, name, source, platform=platform, max_size=size, promote=promote, insecure=insecure, report=report
    )


def export_image(
    layout: Layout, ref: str, dest: str, format: str, tag: str | None, report: Callable[[str], None] | None
) -> Exported:
    return exports.export_image(layout, ref, dest, format=format, tag=tag, report=report)


def versions(layout: Layout) -> list[StackCost]:
    return Accountant(layout).every_version()


def details(layout: Layout, ref: str) -> StackDetails:
    stacks = StackStore(layout)
    name, version = check_stack_ref(ref)
    stack = stacks.version(name, version or stacks.current_version(name))
    layers = LayerStore(layout)
    return StackDetails(
        stack,
        stacks.current_or_none(name) == stack.version,
        tuple(layers.info(digest) for digest in stack.layers),
        Accountant(layout).cost(stack).flattened,
    )


def promote(layout: Layout, ref: str) -> StackSwitch:
    stacks = StackStore(layout)
    name, version = pinned(ref)
    before = stacks.current_or_none(name)
    stacks.promote(name, version)
    return StackSwitch(name, version, before)


def rollback(layout: Layout, name: str) -> StackSwitch:
    stacks = StackStore(layout)
    before = stacks.current_version(name)
    return StackSwitch(name, stacks.rollback(name), before)


def remove(layout: Layout, ref: str) -> str:
    """Forget version NAME@VERSION (refused while current or in use); returns its ref. Its layers stay
    until gc with layers."""
    name, version = pinned(ref)
    StackStore(layout).remove(name, version, refs_in_use(layout))
    return f"{name}@{version}"


def disk_usage(layout: Layout) -> DiskUsage:
    return Accountant(layout).current()
