"""What a task asks for: immutable, validated values. Invalid input raises SpecError naming the field and the fix.

Nothing here touches the host; checks that need it (does a volume's source exist?) belong to the plan.
"""

from __future__ import annotations

import posixpath
import re
from types import MappingProxyType

from lxrun.errors import SpecError
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

CAPTURE = "capture"
"""An output target: collect the stream into the Result instead of writing it to a descriptor."""

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
TASK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HOSTNAME_LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
HOSTNAME_MAX = 64  # the kernel's __NEW_UTS_LEN


def is_valid_name(name: str) -> bool:
    """Stack, base and version names: no '/', no '..', so they are safe as file names."""
    return NAME_RE.fullmatch(name) is not None and ".." not in name


def check_container_path(what: str, path: str) -> str:
    """An absolute path inside the sandbox without `..`; returned normalized."""
    if "\0" in path:
        raise SpecError(what, "contains a NUL byte", path=repr(path))
    if not path.startswith("/"):
        raise SpecError(what, "must be an absolute path inside the sandbox", path=path, hint=f"use /{path}")
    if ".." in path.split("/"):
        raise SpecError(what, "must not contain '..'", path=path, hint="give the path without '..'")
    return posixpath.normpath(path).replace("//", "/")


def check_stack_ref(ref: str) -> tuple[str, str | None]:
    """`NAME` or `NAME@VERSION` -> (name, version or None)."""
    name, _, version = ref.partition("@")
    if not is_valid_name(name):
        raise SpecError(
            "stack", "is not a valid stack name", path=ref, hint="use letters, digits and . _ + - (e.g. python3.11)"
        )
    if version and not is_valid_name(version):
        raise SpecError("stack", "has an invalid version", path=ref, hint="use NAME@VERSION, e.g. python3.11@1.0")
    return name, version or None


def check_hostname(hostname: str) -> None:
    labels = hostname.split(".")
    if len(hostname) > HOSTNAME_MAX or not all(HOSTNAME_LABEL_RE.fullmatch(label) for label in labels):
        raise SpecError(
            "hostname",
            "is not a valid hostname",
            path=hostname,
            hint=f"use letters, digits, '-' and '.', at most {HOSTNAME_MAX} characters",
        )


def frozen_env(env: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    pairs = dict(env)
    for key, value in pairs.items():
        if not key or "=" in key or "\0" in key:
            raise SpecError("env", "variable names must be non-empty without '=' or NUL", path=repr(key))
        if "\0" in value:
            raise SpecError("env", "value contains a NUL byte", path=key)
    return MappingProxyType(pairs)


class Volume(Record):
    """A host path bind-mounted into the sandbox."""

    __slots__ = ("read_only", "source", "target")
    source: str
    target: str
    read_only: bool

    def __init__(self, source: str, target: str, read_only: bool = False) -> None:
        if not source.startswith("/") or "\0" in source:
            raise SpecError(
                "volume", "host path must be absolute", path=source, hint="give the full path, e.g. $PWD/dir"
            )
        target = check_container_path("volume", target)
        if target == "/":
            raise SpecError("volume", "cannot be mounted over the sandbox's root", path=target)
        super().__init__(source=source, target=target, read_only=read_only)


class TaskSpec(Record):
    """One task: run `argv` on `stack` in a fresh sandbox.

    stdin is a descriptor the task reads (None: /dev/null); stdout and stderr are descriptors the task
    writes to directly, or CAPTURE to collect them into the Result. `env` is laid over the stack's
    defaults. `workdir` is created if the stack lacks it, as docker does. `keep` keeps the upper dir.
    """

    __slots__ = ("argv", "env", "hostname", "keep", "name", "stack", "stderr", "stdin", "stdout", "volumes", "workdir")
    stack: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    workdir: str | None
    name: str | None
    hostname: str | None
    volumes: tuple[Volume, ...]
    stdin: int | None
    stdout: int | str
    stderr: int | str
    keep: bool

    def __init__(
        self,
        stack: str,
        argv: Iterable[str],
        env: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        workdir: str | None = None,
        name: str | None = None,
        hostname: str | None = None,
        volumes: Iterable[Volume] = (),
        stdin: int | None = None,
        stdout: int | str = CAPTURE,
        stderr: int | str = CAPTURE,
        keep: bool = False,
    ) -> None:
        check_stack_ref(stack)
        argv = tuple(argv)
        if not argv or not argv[0]:
            raise SpecError("command", "no command given", hint="put the command after --, e.g. -- echo hello")
        if any("\0" in arg for arg in argv):
            raise SpecError("command", "an argument contains a NUL byte")
        if workdir is not None:
            workdir = check_container_path("workdir", workdir)
        if name is not None and not TASK_NAME_RE.fullmatch(name):
            raise SpecError(
                "name", "is not a valid task name", path=name, hint="use letters, digits and _ . -, at most 64"
            )
        if hostname is not None:
            check_hostname(hostname)
        volumes = tuple(volumes)
        targets = [volume.target for volume in volumes]
        for target in targets:
            if targets.count(target) > 1:
                raise SpecError("volume", "is given twice", path=target, hint="mount one source per sandbox path")
        if stdin is not None and stdin < 0:
            raise SpecError("stdin", f"{stdin} is not a file descriptor")
        for stream, value in (("stdout", stdout), ("stderr", stderr)):
            if value != CAPTURE and (not isinstance(value, int) or value < 0):
                raise SpecError(stream, f"{value!r} is neither a file descriptor nor {CAPTURE!r}")
        super().__init__(
            stack=stack,
            argv=argv,
            env=frozen_env(env),
            workdir=workdir,
            name=name,
            hostname=hostname,
            volumes=volumes,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            keep=keep,
        )
