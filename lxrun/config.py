"""The host's defaults for tasks: the bounds a task gets when its spec leaves them unset.

A runner host sets them once, in TOML:

    [defaults]
    memory = "2g"      # a size (docker's units) or bytes; -1: no limit
    pids = 4096        # -1: no limit
    disk = "1g"        # each place a task writes: its root's upper dir and /tmp; -1: tmpfs's own default
    timeout = 3600     # seconds; -1: none

`<state root>/config.toml` is read if it exists (for tests and hosts with several state roots), else
/etc/lxrun/config.toml; the first found is the whole config, and a key it leaves out keeps the shipped
value (SHIPPED). A task's own value wins over the config, UNLIMITED (-1) included.

Parsing TOML costs ~5 ms of imports (tomllib pulls in typing and datetime), paid on every `lxrun exec`:
so a file is parsed only when it is new or changed, and its values are kept in `<root>/cache/config.json`
(json is loaded on that path anyway), named by the file's path, inode, size and times.
"""

from __future__ import annotations

import os

from lxrun import cache_file
from lxrun import plainjson as json
from lxrun.errors import LxrunError, SpecError
from lxrun.options import parse_size
from lxrun.record import Record
from lxrun.spec import MIN_DISK, UNLIMITED, Limits

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from lxrun.spec import TaskSpec

TABLE = "defaults"


class Defaults(Record):
    """What a task gets for each bound its spec leaves unset; None: no bound."""

    __slots__ = ("disk", "memory", "pids", "timeout")
    memory: int | None
    pids: int | None
    disk: int | None
    timeout: float | None

    def __init__(
        self, memory: int | None = None, pids: int | None = None, disk: int | None = None, timeout: float | None = None
    ) -> None:
        super().__init__(memory=memory, pids=pids, disk=disk, timeout=timeout)


# Conservative, so that a task can't take the host down when nobody set anything:
# - memory 2 GiB: a compiler or a test suite fits; a runner host (8-16 GiB) survives a few such tasks
#   at once. The tmpfs a task writes to (its root, /tmp) and the kernel memory of its inodes and
#   processes are charged to it too, so this also bounds what `disk` and inode counts can take.
# - pids 4096: ample for make -j or a JVM's threads; an eighth of the kernel's default pid_max (32768),
#   so one fork bomb leaves the host room to work.
# - disk 1 GiB: each of the task's root (its upper dir) and /tmp, enough for a pip or npm install.
# - timeout 3600 s: tasks run up to 60 minutes; a hung one is ended (SIGTERM, then SIGKILL).
SHIPPED = Defaults(memory=2 << 30, pids=4096, disk=1 << 30, timeout=3600.0)


def load_defaults(files: Sequence[str], cache: str) -> Defaults:
    """The defaults from the first of `files` that exists, else SHIPPED. A bad file is an LxrunError
    naming it and the key; `cache` keeps what a file said, so an unchanged file is not parsed again."""
    for path in files:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LxrunError.from_os_error("config", exc, path=path) from exc
        key = f"{path}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
        found = _cached(cache, key)
        if found is None:
            found = parse(path, _read_toml(path))
            _store(cache, key, found)
        return found
    return SHIPPED


def parse(path: str, data: dict[str, Any]) -> Defaults:
    """A config's TOML document -> Defaults; the shipped value for each key it leaves out."""
    unknown = sorted(set(data) - {TABLE})
    if unknown or not isinstance(data.get(TABLE, {}), dict):
        bad = unknown[0] if unknown else TABLE
        raise LxrunError("config", f"{bad}: unknown table or key", path=path, hint=f"put the keys in [{TABLE}]")
    table: dict[str, Any] = data.get(TABLE, {})
    unknown = sorted(set(table) - set(Defaults.fields()))
    if unknown:
        raise LxrunError(
            "config", f"{TABLE}.{unknown[0]}: unknown key", path=path, hint=f"use {', '.join(Defaults.fields())}"
        )
    values = SHIPPED.as_dict()
    for name, value in table.items():
        try:
            values[name] = _value(name, value)
        except SpecError as exc:
            reason = f"{exc.path} {exc.reason}" if exc.path else exc.reason  # parse_size names the text as path
            raise LxrunError("config", f"{TABLE}.{name}: {reason}", path=path, hint=exc.hint) from exc
    return Defaults(**values)


def _value(name: str, value: object) -> int | float | None:
    """One key's value, checked as the task field it stands for; None for UNLIMITED."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(name, f"{value!r} is neither a number nor a size", hint='e.g. 4096 or "2g"')
    if name in ("memory", "disk"):
        size = parse_size(name, value) if isinstance(value, str) else value
        if not isinstance(size, int):
            raise SpecError(name, f"{size!r} is not a whole number of bytes", hint='e.g. "2g"')
        if size == UNLIMITED:
            return None
        if name == "memory":
            Limits(memory=size)
        elif size < MIN_DISK:
            raise SpecError(name, f"{size} bytes is below the minimum of 1m", hint='e.g. "1g", or -1 for no cap')
        return size
    if name == "pids":
        if not isinstance(value, int):
            raise SpecError(name, f"{value!r} is not a whole number", hint="e.g. 4096, or -1 for no limit")
        return None if value == UNLIMITED else Limits(pids=value).pids
    if isinstance(value, str) or not (value > 0 or value == UNLIMITED):
        raise SpecError(name, f"{value!r} is not a positive number of seconds", hint="e.g. 3600, or -1 for none")
    return None if value == UNLIMITED else float(value)


def apply(spec: TaskSpec, defaults: Defaults) -> TaskSpec:
    """`spec` with each bound it left unset (None) taken from `defaults`, and UNLIMITED made None (no
    bound), which is what the backends read. A task that keeps its upper dir on disk gets no disk cap."""

    def bound(value: float | None, default: float | None) -> Any:
        return default if value is None else None if value == UNLIMITED else value

    limits = spec.limits
    memory, pids = bound(limits.memory, defaults.memory), bound(limits.pids, defaults.pids)
    return spec.replace(
        limits=limits if (memory, pids) == (limits.memory, limits.pids) else limits.replace(memory=memory, pids=pids),
        disk=bound(spec.disk, None if spec.keep else defaults.disk),
        timeout=bound(spec.timeout, defaults.timeout),
    )


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib  # ~5 ms of imports: only for a config file not seen before

    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise LxrunError.from_os_error("config", exc, path=path) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LxrunError("config", f"is not valid TOML: {exc}", path=path) from exc


def _cached(cache: str, key: str) -> Defaults | None:
    try:
        with open(cache) as file:
            found = json.load(file)
        if found.get("key") == key:
            return Defaults(**found["defaults"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass  # missing or unreadable: parse the file again
    return None


def _store(cache: str, key: str, defaults: Defaults) -> None:
    """Best effort: it is only a cache, so a read-only state root costs each start a parse."""
    cache_file.store(cache, json.dumps({"key": key, "defaults": defaults.as_dict()}).encode())
