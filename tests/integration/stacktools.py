"""Helpers for the stack tests: spec files in a temp spec directory, a snapshot of what the store holds."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lxrun.layout import Layout
from lxrun.store.builds import build_stack
from lxrun.store.specs import SOURCE_TREE

TomlValue = str | list[str] | dict[str, str]


def toml_value(value: TomlValue) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(key)} = {json.dumps(item)}" for key, item in value.items()) + " }"
    return json.dumps(value)  # JSON strings and lists of strings are valid TOML


def write_stack(specs: Path, stem: str, **fields: TomlValue | None) -> Path:
    """stacks/STEM.toml in the spec directory `specs`: name STEM, version "1" and parent busybox unless
    given otherwise; a field given as None is left out."""
    values: dict[str, TomlValue | None] = {"name": stem, "version": "1", "parent": "busybox", **fields}
    path = specs / "stacks" / f"{stem}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {toml_value(value)}\n" for key, value in values.items() if value is not None]
    path.write_text("".join(lines))
    return path


def build_deleting_stack(root: Path, specs: Path, prefix: str) -> str:
    """Stacks PREFIX-one (busybox, a diff deleting a base file) and PREFIX-two (a diff replacing a
    directory: opaque) built in `root`; the top's name."""
    write_stack(specs, f"{prefix}-one", run=["rm /etc/os-release", "mkdir -p /srv/a && echo 1 > /srv/a/one"])
    write_stack(
        specs, f"{prefix}-two", parent=f"{prefix}-one", run=["rm -rf /srv/a && mkdir /srv/a && echo 2 > /srv/a/two"]
    )
    with open(os.devnull, "w") as devnull:
        build_stack(f"{prefix}-two", Layout(root), log_fd=devnull.fileno())
    return f"{prefix}-two"


def specs_env(specs: Path) -> str:
    """$LXRUN_SPECS: the test's spec directory, then the source tree (for rootfs/busybox.toml)."""
    return f"{specs}:{SOURCE_TREE}"


def store_listing(root: Path) -> list[str]:
    """Every path under layers/ and stacks/, to compare before and after something that must write nothing."""
    return sorted(str(path.relative_to(root)) for top in ("layers", "stacks") for path in (root / top).rglob("*"))


def tree_hash(path: Path) -> str:
    """Names, modes and contents of a tree (symlink targets, device numbers), without following links."""
    digest = hashlib.sha256()
    for entry in sorted(path.rglob("*")):
        st = entry.lstat()
        digest.update(f"{entry.relative_to(path)} {st.st_mode} {st.st_rdev}\n".encode())
        if entry.is_symlink():
            digest.update(os.readlink(entry).encode())
        elif entry.is_file():
            digest.update(entry.read_bytes())
    return digest.hexdigest()
