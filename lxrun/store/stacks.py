"""Stacks: named chains of layers with versions, and which version is current.

    stacks/<name>/versions/<version>.json   immutable once written
    stacks/<name>/current                    a symlink to versions/<version>.json
    stacks/<name>/history                    the versions promoted, oldest first (what rollback pops)
    stacks/<name>/lock                       serializes changes (never taken by readers)

Promoting swaps `current` with one rename, so a task resolving a stack sees the old chain or the
new one, never a mix: it reads the link once, then only immutable files. The history is written
before that rename and only ever read by rollback, which repairs it if a crash came in between.
"""

from __future__ import annotations

import contextlib
import os
import time
from types import MappingProxyType

from lxrun import plainjson as json
from lxrun.errors import StackNotFound, StoreError
from lxrun.record import Record
from lxrun.spec import check_stack_ref
from lxrun.store.imageconfig import ImageConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any

    from lxrun.layout import Layout


HISTORY_KEPT = 100  # promotions remembered: how far back rollback can go
STACKS_KEPT = 64  # stack versions a store keeps read for tasks


class StackVersion(Record):
    """One built version: its layers (digests, the base first), env defaults for tasks, labels, the
    parent version it was built on (None for a base), and for an imported image its config."""

    __slots__ = ("created", "env", "image", "labels", "layers", "name", "parent", "version")
    name: str
    version: str
    layers: tuple[str, ...]
    env: Mapping[str, str]
    labels: Mapping[str, str]
    created: float
    parent: str | None
    image: ImageConfig | None

    def __init__(
        self,
        name: str,
        version: str,
        layers: Iterable[str],
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        created: float = 0.0,
        parent: str | None = None,
        image: ImageConfig | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            name=name,
            version=version,
            layers=tuple(layers),
            env=MappingProxyType(dict(env or {})),
            labels=MappingProxyType(dict(labels or {})),
            created=created,
            parent=parent,
            image=image if image is None or isinstance(image, ImageConfig) else ImageConfig(**image),
        )

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> str:
        data = {**self.as_dict(), "env": dict(self.env), "labels": dict(self.labels), "layers": list(self.layers)}
        data["image"] = self.image.to_json() if self.image is not None else None
        return json.dumps(data, indent=1)


class ResolvedStack(Record):
    """What a task runs on: a stack version, its layers' digests and trees (both lowest first), its env,
    and the image config of an imported image (or of the image a stack was built on)."""

    __slots__ = ("env", "image", "layer_paths", "layers", "name", "version")
    name: str
    version: str
    layers: tuple[str, ...]
    layer_paths: tuple[str, ...]
    env: Mapping[str, str]
    image: ImageConfig | None

    def __init__(
        self,
        name: str,
        version: str,
        layers: Iterable[str],
        layer_paths: Iterable[str],
        env: Mapping[str, str],
        image: ImageConfig | None = None,
    ) -> None:
        super().__init__(
            name=name, version=version, layers=tuple(layers), layer_paths=tuple(layer_paths), env=env, image=image
        )

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class StackStore:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        # Versions read for tasks, by their file's path: a version never changes, so a stat that finds
        # the same file (inode, mtime) stands for reading and parsing it again.
        self._read: dict[str, tuple[tuple[int, int], StackVersion]] = {}

    def _versions_dir(self, name: str) -> str:
        return f"{self.layout.stack(name)}/versions"

    def _current_link(self, name: str) -> str:
        return f"{self.layout.stack(name)}/current"

    def _history_file(self, name: str) -> str:
        return f"{self.layout.stack(name)}/history"

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """One writer per stack at a time (add, promote, rollback, rm); readers never wait."""
        import fcntl

        with open(f"{self.layout.stack(name)}/lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def add_version(self, stack: StackVersion) -> StackVersion:
        """Record a built version. The same version with other layers is refused: bump the version."""
        os.makedirs(self._versions_dir(stack.name), exist_ok=True)
        with self._locked(stack.name):
            path = f"{self._versions_dir(stack.name)}/{stack.version}.json"
            if os.path.exists(path):
                existing = self.version(stack.name, stack.version)
                if existing.layers != stack.layers:
                    raise version_conflict(stack.name, stack.version)
                return existing
            stack = stack.replace(created=time.time())
            write_atomically(path, stack.to_json())
            return stack

    def has_version(self, name: str, version: str) -> bool:
        return os.path.isfile(f"{self._versions_dir(name)}/{version}.json")

    def version(self, name: str, version: str) -> StackVersion:
        path = f"{self._versions_dir(name)}/{version}.json"
        try:
            with open(path) as file:
                data = json.load(file)
        except FileNotFoundError as exc:
            raise StackNotFound(
                "stack", f"has no version {version}", path=name, hint="see `lxrun stack ls`; build it first"
            ) from exc
        return StackVersion(**data)

    def _task_version(self, name: str, version: str) -> StackVersion:
        """`version`, read once while its file stays the same one (`stack rm` removes it: then not found)."""
        path = f"{self._versions_dir(name)}/{version}.json"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return self.version(name, version)  # raises StackNotFound naming it
        found = self._read.get(path)
        if found is not None and found[0] == (st.st_ino, st.st_mtime_ns):
            return found[1]
        stack = self.version(name, version)
        if len(self._read) >= STACKS_KEPT:
            self._read.clear()  # many versions in one process: start over rather than grow
        self._read[path] = (st.st_ino, st.st_mtime_ns), stack
        return stack

    def names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.layout.stacks))
        except FileNotFoundError:
            return []

    def versions(self, name: str) -> list[StackVersion]:
        """Every version of the stack, oldest build first."""
        try:
            files = os.listdir(self._versions_dir(name))
        except FileNotFoundError:
            return []
        found = [self.version(name, file.removesuffix(".json")) for file in files if file.endswith(".json")]
        return sorted(found, key=lambda stack: stack.created)

    def current_version(self, name: str) -> str:
        try:
            target = os.readlink(self._current_link(name))
        except FileNotFoundError as exc:
            raise StackNotFound(
                "stack",
                f"not found in {self.layout.stacks}",
                path=name,
                hint=f"build it first: `lxrun base build {name}` or `lxrun stack build {name}`; or another --root",
            ) from exc
        return os.path.basename(target).removesuffix(".json")

    def current_or_none(self, name: str) -> str | None:
        try:
            return self.current_version(name)
        except StackNotFound:
            return None

    def _switch(self, name: str, version: str) -> None:
        link = self._current_link(name)
        staged = f"{link}.{os.urandom(4).hex()}"
        os.symlink(f"versions/{version}.json", staged)
        os.rename(staged, link)

    def _history(self, name: str) -> list[str]:
        try:
            with open(self._history_file(name)) as file:
                history: list[str] = json.load(file)
        except FileNotFoundError:
            return []
        return history

    def promote(self, name: str, version: str) -> None:
        """Make `version` current with one atomic rename."""
        self.version(name, version)
        with self._locked(name):
            if self.current_or_none(name) == version:
                return
            history = [*self._history(name), version][-HISTORY_KEPT:]
            write_atomically(self._history_file(name), json.dumps(history))
            self._switch(name, version)

    def rollback(self, name: str) -> str:
        """Make the version that was current before the last promote current again; returns it."""
        self.current_version(name)
        with self._locked(name):
            current = self.current_version(name)
            history = self._history(name)
            while history and history[-1] != current:  # promoted in the history, but the rename never came
                history.pop()
            history = history[:-1]
            while history and not self.has_version(name, history[-1]):  # removed since
                history.pop()
            if not history:
                raise StoreError(
                    "rollback", f"no version before {current} to go back to", path=name, hint="see `lxrun stack ls`"
                )
            write_atomically(self._history_file(name), json.dumps(history))
            self._switch(name, history[-1])
            return history[-1]

    def remove(self, name: str, version: str, in_use: Iterable[str]) -> None:
        """Forget a version (its layers stay until `lxrun gc --layers`). Refused for the current version
        and while a task in flight (`in_use`: the refs of live tasks and builds) runs on it."""
        self.version(name, version)
        with self._locked(name):
            ref = f"{name}@{version}"
            if self.current_or_none(name) == version:
                raise StoreError(
                    "stack rm",
                    "is the current version",
                    path=ref,
                    hint=f"promote another version first: lxrun stack promote {name}@VERSION",
                )
            if ref in in_use:
                raise StoreError("stack rm", "a running task uses it", path=ref, hint="wait for it to end")
            os.unlink(f"{self._versions_dir(name)}/{version}.json")

    def resolve(self, ref: str) -> ResolvedStack:
        """`NAME` (its current version) or `NAME@VERSION` -> the layers a task mounts."""
        name, version = check_stack_ref(ref)
        stack = self._task_version(name, version or self.current_version(name))
        paths = tuple(self.layout.layer_rootfs(digest) for digest in stack.layers)
        for digest, path in zip(stack.layers, paths, strict=True):
            if not os.path.isdir(path):
                raise StackNotFound("stack", f"layer {digest[:12]} is missing", path=ref, hint="rebuild the stack")
        return ResolvedStack(name, stack.version, stack.layers, paths, stack.env, stack.image)


def version_conflict(name: str, version: str) -> StoreError:
    return StoreError(
        "stack",
        f"version {version} already exists with other layers",
        path=name,
        hint="a version never changes: bump `version` in its spec",
    )


def write_atomically(path: str, text: str) -> None:
    staged = f"{path}.{os.urandom(4).hex()}"
    with open(staged, "w") as file:
        file.write(text)
    os.rename(staged, path)
