"""`lxrun base build`: make a base layer from its spec and register it as a stack of the same name."""

from __future__ import annotations

from lxrun.layout import Layout
from lxrun.store.busybox import build_busybox
from lxrun.store.layers import LayerStore
from lxrun.store.specs import BaseSpec
from lxrun.store.stacks import StackStore, StackVersion


def build_base(spec: BaseSpec, layout: Layout) -> StackVersion:
    """Build (or find, if unchanged) the base layer, record the version and make it current."""
    layers = LayerStore(layout)
    info = build_busybox(spec, layers)
    stacks = StackStore(layout)
    version = stacks.add_version(StackVersion(spec.name, spec.version, (info.digest,), spec.env, spec.labels))
    stacks.promote(spec.name, spec.version)
    return version
