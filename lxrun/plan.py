"""A TaskSpec on a resolved stack becomes a TaskPlan: everything a backend needs, decided up front.

This is where the host is first consulted (volume sources must exist) and where the task's
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
    __slots__ = ("env", "hostname", "spec", "stack", "task_id", "volumes", "workdir")
    task_id: str
    spec: TaskSpec
    stack: ResolvedStack
    hostname: str
    env: Mapping[str, str]
    workdir: str
    volumes: tuple[PlannedVolume, ...]

    def __init__(
        self,
        task_id: str,
        spec: TaskSpec,
        stack: ResolvedStack,
        hostname: str,
        env: Mapping[str, str],
        workdir: str,
        volumes: tuple[PlannedVolume, ...],
    ) -> None:
        super().__init__(
            task_id=task_id, spec=spec, stack=stack, hostname=hostname, env=env, workdir=workdir, volumes=volumes
        )


def new_task_id() -> str:
    return os.urandom(6).hex()


def _plan_volume(volume: Volume) -> PlannedVolume:
    try:
        mode = os.stat(volume.source).st_mode
    except FileNotFoundError:
        raise SpecError(
            "volume", "source does not exist on the host", path=volume.source, hint="create it first, or fix the path"
        ) from None
    except OSError as exc:
        raise SpecError("volume", f"source cannot be used: {exc.strerror}", path=volume.source) from None
    return PlannedVolume(volume, stat.S_ISDIR(mode))


def task_env(spec: TaskSpec, stack: ResolvedStack, hostname: str) -> dict[str, str]:
    """docker's order: built-in defaults, then the stack's env, then the task's own."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": "/root"}
    env.update(stack.env)
    env.update(spec.env)
    return env


def check_limits_fit_host(limits: Limits) -> None:
    """Limits the host can't honour are bad input, reported before anything is created."""
    usable = os.sched_getaffinity(0)
    if limits.cpus is not None and limits.cpus > len(usable):
        raise SpecError(
            "--cpus",
            f"{limits.cpus:g} is more than the {len(usable)} CPUs this host gives lxrun",
            hint=f"use at most {len(usable)}",
        )
    if limits.cpuset_cpus is not None:
        unknown = sorted(set(parse_cpu_list(limits.cpuset_cpus)) - usable)
        if unknown:
            raise SpecError(
                "--cpuset-cpus",
                f"CPUs {unknown} are not available here",
                path=limits.cpuset_cpus,
                hint=f"choose among {sorted(usable)}",
            )


def plan_task(spec: TaskSpec, stack: ResolvedStack, task_id: str | None = None) -> TaskPlan:
    check_limits_fit_host(spec.limits)
    task_id = task_id or new_task_id()
    hostname = spec.hostname or spec.name or task_id
    return TaskPlan(
        task_id=task_id,
        spec=spec,
        stack=stack,
        hostname=hostname,
        env=task_env(spec, stack, hostname),
        workdir=spec.workdir or "/",
        volumes=tuple(_plan_volume(volume) for volume in spec.volumes),
    )
