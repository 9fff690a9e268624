"""`lxrun base build`: make a base layer from its spec and register it as a stack of the same name."""

from __future__ import annotations

from lxrun.layout import Layout
from lxrun.store.busybox import build_busybox
from lxrun.store.debian import build_debian
from lxrun.store.layers import LayerStore
from lxrun.store.specs import BaseSpec, DebianSpec
from lxrun.store.stacks import StackStore, StackVersion


def build_base(spec: BaseSpec, layout: Layout, log_fd: int = 2) -> StackVersion:
    """Build the base layer, record the version and make it current. A version already recorded with
    that layer makes this a no-op. A builder's own log (mmdebstrap's) goes to `log_fd`."""
    layers, stacks = LayerStore(layout), StackStore(layout)
    info = build_debian(spec, layers, log_fd) if isinstance(spec, DebianSpec) else build_busybox(spec, layers)
    existed = stacks.has_version(spec.name, spec.version)
    version = stacks.add_version(StackVersion(spec.name, spec.version, (info.digest,), spec.env, spec.labels))
    if not existed or stacks.current_or_none(spec.name) is None:
        stacks.promote(spec.name, spec.version)
    return version
