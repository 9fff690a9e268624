"""Stacks: named chains of layers with versions, and which version is current.

    stacks/<name>/versions/<version>.json   immutable once written
    stacks/<name>/current                    a symlink to versions/<version>.json

Promoting swaps `current` with one rename, so a task resolving a stack sees the old chain or the
new one, never a mix: it reads the link once, then only immutable files.
"""

from __future__ import annotations

import json
import os
import time
from types import MappingProxyType

from lxrun.errors import StackNotFound, StoreError
from lxrun.record import Record
from lxrun.spec import check_stack_ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from lxrun.layout import Layout


class StackVersion(Record):
    """One built version: its layers (digests, the base first), env defaults for tasks, labels."""

    __slots__ = ("created", "env", "labels", "layers", "name", "version")
    name: str
    version: str
    layers: tuple[str, ...]
    env: Mapping[str, str]
    labels: Mapping[str, str]
    created: float

    def __init__(
        self,
        name: str,
        version: str,
        layers: Iterable[str],
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        created: float = 0.0,
    ) -> None:
        super().__init__(
            name=name,
            version=version,
            layers=tuple(layers),
            env=MappingProxyType(dict(env or {})),
            labels=MappingProxyType(dict(labels or {})),
            created=created,
        )

    def to_json(self) -> str:
        data = {**self.as_dict(), "env": dict(self.env), "labels": dict(self.labels), "layers": list(self.layers)}
        return json.dumps(data, indent=1)


class ResolvedStack(Record):
    """What a task runs on: a stack version, its layers' digests and trees (both lowest first), its env."""

    __slots__ = ("env", "layer_paths", "layers", "name", "version")
    name: str
    version: str
    layers: tuple[str, ...]
    layer_paths: tuple[str, ...]
    env: Mapping[str, str]

    def __init__(
        self, name: str, version: str, layers: Iterable[str], layer_paths: Iterable[str], env: Mapping[str, str]
    ) -> None:
        super().__init__(name=name, version=version, layers=tuple(layers), layer_paths=tuple(layer_paths), env=env)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class StackStore:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def _versions_dir(self, name: str) -> str:
        return f"{self.layout.stack(name)}/versions"

    def _current_link(self, name: str) -> str:
        return f"{self.layout.stack(name)}/current"

    def add_version(self, stack: StackVersion) -> StackVersion:
        """Record a built version. The same version with other layers is refused: bump the version."""
        versions = self._versions_dir(stack.name)
        os.makedirs(versions, exist_ok=True)
        path = f"{versions}/{stack.version}.json"
        if os.path.exists(path):
            existing = self.version(stack.name, stack.version)
            if existing.layers != stack.layers:
                raise StoreError(
                    "stack",
                    f"version {stack.version} already exists with other layers",
                    path=stack.name,
                    hint="bump `version` in its spec",
                )
            return existing
        stack = stack.replace(created=time.time())
        write_atomically(path, stack.to_json())
        return stack

    def version(self, name: str, version: str) -> StackVersion:
        path = f"{self._versions_dir(name)}/{version}.json"
        try:
            with open(path) as file:
                data = json.load(file)
        except FileNotFoundError:
            raise StackNotFound(
                "stack", f"has no version {version}", path=name, hint="see `lxrun stack ls`; build it first"
            ) from None
        return StackVersion(**data)

    def current_version(self, name: str) -> str:
        try:
            target = os.readlink(self._current_link(name))
        except FileNotFoundError:
            raise StackNotFound(
                "stack",
                "not found",
                path=name,
                hint=f"build it first: `lxrun base build {name}` or `lxrun stack build {name}`",
            ) from None
        return os.path.basename(target).removesuffix(".json")

    def promote(self, name: str, version: str) -> None:
        """Make `version` current with one atomic rename."""
        self.version(name, version)
        link = self._current_link(name)
        staged = f"{link}.{os.urandom(4).hex()}"
        os.symlink(f"versions/{version}.json", staged)
        os.rename(staged, link)

    def resolve(self, ref: str) -> ResolvedStack:
        """`NAME` (its current version) or `NAME@VERSION` -> the layers a task mounts."""
        name, version = check_stack_ref(ref)
        stack = self.version(name, version or self.current_version(name))
        paths = tuple(self.layout.layer_rootfs(digest) for digest in stack.layers)
        for digest, path in zip(stack.layers, paths, strict=True):
            if not os.path.isdir(path):
                raise StackNotFound("stack", f"layer {digest[:12]} is missing", path=ref, hint="rebuild the stack")
        return ResolvedStack(name, stack.version, stack.layers, paths, stack.env)


def write_atomically(path: str, text: str) -> None:
    staged = f"{path}.{os.urandom(4).hex()}"
    with open(staged, "w") as file:
        file.write(text)
    os.rename(staged, path)
