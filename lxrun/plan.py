"""A TaskSpec on a resolved stack becomes a TaskPlan: everything a backend needs, decided up front.

This is where the host is first consulted (volume sources must exist, without symlinks) and where the task's
environment, hostname and workdir get their docker-like defaults. Backends only carry plans out.
"""

from __future__ import annotations

import os
import stat

from lxrun.errors import SpecError
from lxrun.record import Record
from lxrun.spec import parse_cpu_list

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from lxrun.spec import Limits, TaskSpec, Volume
    from lxrun.store.stacks import ResolvedStack

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class PlannedVolume(Record):
    __slots__ = ("is_dir", "volume")
    volume: Volume
    is_dir: bool

    def __init__(self, volume: Volume, is_dir: bool) -> None:
        super().__init__(volume=volume, is_dir=is_dir)


class TaskPlan(Record):
    """A task with everything decided: ids, hostname, env, workdir, volumes, and the user inside (uid, gid)."""

    __slots__ = ("env", "hostname", "spec", "stack", "task_id", "user", "volumes", "workdir")
    task_id: str
    spec: TaskSpec
    stack: ResolvedStack
    hostname: str
    env: Mapping[str, str]
    workdir: str
    volumes: tuple[PlannedVolume, ...]
    user: tuple[int, int]

    def __init__(
        self,
        task_id: str,
        spec: TaskSpec,
        stack: ResolvedStack,
        hostname: str,
        env: Mapping[str, str],
        workdir: str,
        volumes: tuple[PlannedVolume, ...],
        user: tuple[int, int] = (0, 0),
    ) -> None:
        super().__init__(
            task_id=task_id,
            spec=spec,
            stack=stack,
            hostname=hostname,
            env=env,
            workdir=workdir,
            volumes=volumes,
            user=user,
        )

    @property
    def argv(self) -> tuple[str, ...]:
        """The command: the spec's, with an image's Entrypoint and Cmd applied by plan_task."""
        return self.spec.argv or ()


def new_task_id() -> str:
    return os.urandom(6).hex()


def _plan_volume(volume: Volume) -> PlannedVolume:
    """A source that exists, with no symlink in its path: a task may have planted one in a directory it
    could write, to turn a later task's volume onto the host's / (the helper refuses them again when it
    opens the source, so one planted after this check is refused too)."""
    try:
        real = os.path.realpath(volume.source, strict=True)
        mode = os.stat(real).st_mode
    except FileNotFoundError as exc:
        raise SpecError(
            "volume", "source does not exist on the host", path=volume.source, hint="create it first, or fix the path"
        ) from exc
    except OSError as exc:
        raise SpecError("volume", f"source cannot be used: {exc.strerror}", path=volume.source) from exc
    if real != os.path.normpath(volume.source):
        raise SpecError(
            "volume", "source has a symlink in its path", path=volume.source, hint=f"give the resolved path {real}"
        )
    return PlannedVolume(volume, stat.S_ISDIR(mode))


def passwd_entry(stack: ResolvedStack, uid: int) -> tuple[int, str] | None:
    """(primary gid, home) of `uid` in the stack's /etc/passwd (the top-most layer that has one)."""
    for layer in reversed(stack.layer_paths):
        try:
            with open(f"{layer}/etc/passwd") as file:
                lines = file.read().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            continue
        for line in lines:
            fields = line.split(":")
            if len(fields) >= 6 and fields[2] == str(uid) and fields[3].isdigit():
                return int(fields[3]), fields[5]
        return None
    return None


def task_user(spec: TaskSpec, stack: ResolvedStack) -> tuple[tuple[int, int], str]:
    """(uid, gid) inside, and HOME: as docker, a uid alone takes its passwd group, else group 0."""
    user = spec.security.user
    if user is None:
        return (0, 0), "/root"
    uid, gid = user
    entry = passwd_entry(stack, uid)
    return (uid, gid if gid is not None else entry[0] if entry else 0), entry[1] if entry else "/"


def task_env(spec: TaskSpec, stack: ResolvedStack, hostname: str, home: str = "/root") -> dict[str, str]:
    """docker's order: built-in defaults, then the stack's env, then the task's own."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": home}
    env.update(stack.env)
    env.update(spec.env)
    return env


def check_limits_fit_host(limits: Limits) -> None:
    """Limits the host can't honour are bad input, reported before anything is created."""
    usable = os.sched_getaffinity(0)
    if limits.cpus is not None and limits.cpus > len(usable):
        raise SpecError(
            "cpus",
            f"{limits.cpus:g} is more than the {len(usable)} CPUs this host gives lxrun",
            hint=f"use at most {len(usable)}",
        )
    if limits.cpuset_cpus is not None:
        unknown = sorted(set(parse_cpu_list(limits.cpuset_cpus)) - usable)
        if unknown:
            raise SpecError(
                "cpuset_cpus",
                f"CPUs {unknown} are not available here",
                path=limits.cpuset_cpus,
                hint=f"choose among {sorted(usable)}",
            )


def plan_task(spec: TaskSpec, stack: ResolvedStack, task_id: str | None = None) -> TaskPlan:
    if spec.argv is None or spec.entrypoint is not None or stack.image is not None:
        from lxrun.image_run import image_spec

        spec = image_spec(spec, stack)
    check_limits_fit_host(spec.limits)
    task_id = task_id or new_task_id()
    hostname = spec.hostname or spec.name or task_id
    user, home = task_user(spec, stack)
    return TaskPlan(
        task_id=task_id,
        spec=spec,
        stack=stack,
        hostname=hostname,
        env=task_env(spec, stack, hostname, home),
        workdir=spec.workdir or "/",
        volumes=tuple(_plan_volume(volume) for volume in spec.volumes),
        user=user,
    )
