"""Declarative specs: bases in rootfs/NAME.toml, stacks in stacks/NAME.toml. Loading validates every key.

Where specs are looked up: the directories in $LXRUN_SPECS (colon-separated; each holds rootfs/ and
stacks/), else the current directory and then the lxrun source tree, in that order.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lxrun.errors import SpecError
from lxrun.record import Record
from lxrun.spec import is_valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

SPECS_ENV = "LXRUN_SPECS"
SOURCE_TREE = Path(__file__).resolve().parents[2]
BUILDERS = ("busybox",)


def spec_dirs() -> list[Path]:
    configured = os.environ.get(SPECS_ENV)
    if configured:
        return [Path(entry) for entry in configured.split(":") if entry]
    return [Path.cwd(), SOURCE_TREE]


def find_spec(kind: str, name: str) -> Path:
    """The file of base or stack `name`: `kind` is "rootfs" or "stacks"; a path to a .toml is taken as is."""
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise SpecError("spec", "no such file", path=name)
        return path
    if not is_valid_name(name):
        raise SpecError("spec", "is not a valid name", path=name, hint="use letters, digits and . _ + -")
    for directory in spec_dirs():
        candidate = directory / kind / f"{name}.toml"
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(directory / kind) for directory in spec_dirs())
    raise SpecError("spec", f"no {kind}/{name}.toml", path=name, hint=f"searched {searched}; set {SPECS_ENV}")


def _string_table(path: Path, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SpecError("spec", f"`{key}` must be a table of strings", path=str(path))
    return dict(value)


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("spec", f"is not valid TOML: {exc}", path=str(path)) from None


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


BASE_KEYS = {"name", "version", "builder", "env", "labels"}


def load_base_spec(path: Path) -> BaseSpec:
    data = _load_toml(path)
    unknown = sorted(set(data) - BASE_KEYS)
    if unknown:
        raise SpecError(
            "spec", f"unknown key `{unknown[0]}`", path=str(path), hint=f"known: {', '.join(sorted(BASE_KEYS))}"
        )
    for key in ("name", "version", "builder"):
        if not isinstance(data.get(key), str):
            raise SpecError("spec", f"`{key}` is missing or not a string", path=str(path))
    if not is_valid_name(data["name"]):
        raise SpecError("spec", f"`name` {data['name']!r} is not a valid name", path=str(path))
    if not is_valid_name(data["version"]):
        raise SpecError("spec", f"`version` {data['version']!r} is not a valid version", path=str(path))
    if data["builder"] not in BUILDERS:
        raise SpecError(
            "spec",
            f"`builder` {data['builder']!r} is unknown",
            path=str(path),
            hint=f"use one of {', '.join(BUILDERS)}",
        )
    return BaseSpec(
        path=path,
        name=data["name"],
        version=data["version"],
        builder=data["builder"],
        env=_string_table(path, "env", data.get("env", {})),
        labels=_string_table(path, "labels", data.get("labels", {})),
    )
