"""Declarative specs: bases in rootfs/NAME.toml, stacks in stacks/NAME.toml. Loading validates every key.

Where specs are looked up: the directories in $LXRUN_SPECS (colon-separated; each holds rootfs/ and
stacks/), else the current directory and then the lxrun source tree, in that order. A bad spec is
one SpecError naming the file and the key; nothing is built from it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lxrun.errors import SpecError
from lxrun.record import Record
from lxrun.spec import frozen_env, is_valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

SPECS_ENV = "LXRUN_SPECS"
SOURCE_TREE = Path(__file__).resolve().parents[2]
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Debian policy 5.6.1, plus apt's optional :arch and =version.
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?")
# Locales libc has built in need no `locales` package; others are generated (charset required).
BUILTIN_LOCALES = ("C", "C.UTF-8", "POSIX")
LOCALE_RE = re.compile(r"[a-z]{2,3}_[A-Z]{2}\.([A-Za-z0-9-]+)(@[a-z]+)?")
MIRROR_RE = re.compile(r"https?://[^\s,]+")
NAME_HINT = "use letters, digits and . _ + -, no / or .."


def spec_dirs() -> list[Path]:
    configured = os.environ.get(SPECS_ENV)
    if configured:
        return [Path(entry) for entry in configured.split(":") if entry]
    return [Path.cwd(), SOURCE_TREE]


def lookup_spec(kind: str, name: str) -> Path | None:
    """The first `kind`/NAME.toml in the spec directories, or None."""
    for directory in spec_dirs():
        candidate = directory / kind / f"{name}.toml"
        if candidate.is_file():
            return candidate
    return None


def find_spec(kind: str, name: str) -> Path:
    """The file of base or stack `name`: `kind` is "rootfs" or "stacks"; a path to a .toml is taken as is."""
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise SpecError("spec", "no such file", path=name)
        return path
    if not is_valid_name(name):
        raise SpecError("spec", "is not a valid name", path=name, hint=NAME_HINT)
    found = lookup_spec(kind, name)
    if found is None:
        searched = ", ".join(str(directory / kind) for directory in spec_dirs())
        raise SpecError("spec", f"no {kind}/{name}.toml", path=name, hint=f"searched {searched}; set {SPECS_ENV}")
    return found


class _Fields:
    """A spec file's top-level table; every check names the file and the key it refused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as file:
                self.data: dict[str, Any] = tomllib.load(file)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError("spec", f"is not valid TOML: {exc}", path=str(path)) from exc
        except UnicodeDecodeError as exc:
            raise SpecError("spec", f"is not UTF-8 (byte {exc.start})", path=str(path), hint="TOML is UTF-8") from exc

    def only(self, known: Iterable[str]) -> None:
        known = sorted(known)
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            raise self.error(unknown[0], "is not a known key", hint=f"known: {', '.join(known)}")

    def error(self, key: str, reason: str, hint: str | None = None) -> SpecError:
        return SpecError("spec", f"`{key}` {reason}", path=str(self.path), hint=hint)

    def string(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.error(key, "is missing" if value is None else "must be a string")
        return value

    def name(self, key: str, what: str = "name") -> str:
        value = self.string(key)
        if not is_valid_name(value):
            raise self.error(key, f"{value!r} is not a valid {what}", hint=NAME_HINT)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise self.error(key, "must be a list of non-empty strings")
        return tuple(value)

    def table(self, key: str) -> dict[str, str]:
        value = self.data.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.error(key, "must be a table of strings")
        return dict(value)

    def env(self) -> dict[str, str]:
        values = self.table("env")
        try:
            frozen_env(values)
        except SpecError as exc:
            raise self.error("env", f"{exc.path}: {exc.reason}") from exc
        return values

    def packages(self) -> tuple[str, ...]:
        packages = self.strings("packages")
        for package in packages:
            if not PACKAGE_RE.fullmatch(package):
                raise self.error("packages", f"{package!r} is not a valid Debian package name")
        return packages

    def own_name(self) -> str:
        """`name`, which must match the file's name, so `lxrun ... build NAME` builds what NAME.toml says."""
        name = self.name("name")
        if name != self.path.stem:
            raise self.error("name", f"{name!r} differs from the file's name", hint=f"rename it to {name}.toml")
        return name


class BaseSpec(Record):
    """A base rootfs: `builder` says how it is made."""

    __slots__ = ("builder", "env", "labels", "name", "path", "version")
    path: Path
    name: str
    version: str
    builder: str
    env: Mapping[str, str]
    labels: Mapping[str, str]

    def __init__(
        self,
        path: Path,
        name: str,
        version: str,
        builder: str,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            path=path,
            name=name,
            version=version,
            builder=builder,
            env=MappingProxyType(dict(env or {})),
            labels=MappingProxyType(dict(labels or {})),
        )

    def canonical(self) -> dict[str, Any]:
        """What decides the layer's content (and so its digest)."""
        return {"name": self.name, "version": self.version, "builder": self.builder}


class DebianSpec(BaseSpec):
    """A Debian base made by mmdebstrap (variant minbase): suite, mirror, extra packages, locale."""

    __slots__ = ("locale", "mirror", "packages", "suite")
    suite: str
    mirror: str
    packages: tuple[str, ...]
    locale: str

    def __init__(
        self,
        path: Path,
        name: str,
        version: str,
        builder: str,
        suite: str,
        mirror: str = DEBIAN_MIRROR,
        packages: Iterable[str] = (),
        locale: str = "C.UTF-8",
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        Record.__init__(
            self,
            path=path,
            name=name,
            version=version,
            builder=builder,
            env=MappingProxyType({"LANG": locale, **(env or {})}),
            labels=MappingProxyType(dict(labels or {})),
            suite=suite,
            mirror=mirror,
            packages=tuple(packages),
            locale=locale,
        )

    def canonical(self) -> dict[str, Any]:
        return {
            **super().canonical(),
            "suite": self.suite,
            "mirror": self.mirror,
            "packages": sorted(set(self.packages)),
            "locale": self.locale,
        }


BASE_KEYS = {"name", "version", "builder", "env", "labels"}
BUILDER_KEYS = {"busybox": set(), "mmdebstrap": {"suite", "mirror", "packages", "locale"}}


def load_base_spec(path: Path) -> BaseSpec:
    fields = _Fields(path)
    builder = fields.string("builder")
    if builder not in BUILDER_KEYS:
        raise fields.error("builder", f"{builder!r} is unknown", hint=f"use one of {', '.join(BUILDER_KEYS)}")
    fields.only(BASE_KEYS | BUILDER_KEYS[builder])
    name, version = fields.own_name(), fields.name("version", "version")
    env, labels = fields.env(), fields.table("labels")
    if builder == "busybox":
        return BaseSpec(path, name, version, builder, env, labels)
    locale = fields.string("locale", "C.UTF-8")
    if locale not in BUILTIN_LOCALES and not LOCALE_RE.fullmatch(locale):
        raise fields.error("locale", f"{locale!r} is not a locale", hint="e.g. C.UTF-8 or en_US.UTF-8")
    mirror = fields.string("mirror", DEBIAN_MIRROR)
    if not MIRROR_RE.fullmatch(mirror):
        raise fields.error("mirror", f"{mirror!r} is not an http(s) URL")
    return DebianSpec(
        path,
        name,
        version,
        builder,
        suite=fields.name("suite", "suite"),
        mirror=mirror,
        packages=fields.packages(),
        locale=locale,
        env=env,
        labels=labels,
    )


class StackSpec(Record):
    """A stack: apt packages and run steps on top of `parent` (a base or another stack, an imported image
    among them). `image` holds what the spec says of an image config (entrypoint, cmd, workdir, user):
    it overrides the parent's."""

    __slots__ = ("env", "image", "labels", "name", "packages", "parent", "path", "run", "version")
    path: Path
    name: str
    version: str
    parent: str
    packages: tuple[str, ...]
    run: tuple[str, ...]
    env: Mapping[str, str]
    labels: Mapping[str, str]
    image: Mapping[str, Any]

    def __init__(
        self,
        path: Path,
        name: str,
        version: str,
        parent: str,
        packages: Iterable[str] = (),
        run: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        image: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            path=path,
            name=name,
            version=version,
            parent=parent,
            packages=tuple(packages),
            run=tuple(run),
            env=MappingProxyType(dict(env or {})),
            labels=MappingProxyType(dict(labels or {})),
            image=MappingProxyType(dict(image or {})),
        )

    def canonical(self, parent_digest: str) -> dict[str, Any]:
        """What decides the diff's content: the spec's build inputs and the parent's top layer (which
        stands for its whole chain). Labels and the image config are not content; the version is, so
        bumping it rebuilds."""
        return {
            "kind": "stack",
            "name": self.name,
            "version": self.version,
            "parent": parent_digest,
            "packages": sorted(set(self.packages)),
            "run": list(self.run),
            "env": dict(sorted(self.env.items())),
        }


IMAGE_LISTS = ("entrypoint", "cmd")  # as an image config's Entrypoint and Cmd
IMAGE_STRINGS = ("workdir", "user")  # WorkingDir and User
STACK_KEYS = {"name", "version", "parent", "packages", "run", "env", "labels", *IMAGE_LISTS, *IMAGE_STRINGS}


def image_fields(fields: _Fields) -> dict[str, Any]:
    """The image config keys the spec gives (a list may be empty: `cmd = []` clears the parent's)."""
    found: dict[str, Any] = {}
    for key in IMAGE_LISTS:
        value = fields.data.get(key)
        if value is not None:
            if not isinstance(value, list) or not all(isinstance(item, str) and "\0" not in item for item in value):
                raise fields.error(key, "must be a list of strings (an exec form, as in a Dockerfile)")
            found[key] = tuple(value)
    for key in IMAGE_STRINGS:
        if key in fields.data:
            value = fields.string(key)
            if "\0" in value or (key == "workdir" and value and not value.startswith("/")):
                raise fields.error(key, f"{value!r} is not {'an absolute path' if key == 'workdir' else 'a user'}")
            found[key] = value
    return found


def load_stack_spec(path: Path) -> StackSpec:
    fields = _Fields(path)
    fields.only(STACK_KEYS)
    name = fields.own_name()
    parent = fields.name("parent", "stack or base name")
    if parent == name:
        raise fields.error("parent", f"{parent!r} is the stack itself (a cycle)")
    return StackSpec(
        path=path,
        name=name,
        version=fields.name("version", "version"),
        parent=parent,
        packages=fields.packages(),
        run=fields.strings("run"),
        env=fields.env(),
        labels=fields.table("labels"),
        image=image_fields(fields),
    )
