"""The OCI verbs that act on a running container's cgroup: pause and resume (the freezer), update (its
limits, through lxrun's one limits table), ps (its processes) and events (its usage figures, runc's
types/events.go shape). lxrun/oci/cli.py parses and prints; the cgroup work is lxrun.cgroups'.

pause leaves `<root>/oci/<id>/paused` naming the freezer file and what it reads when frozen, so `state`
reads the kernel's word without finding the cgroup (container.status); resume removes it.
"""

from __future__ import annotations

import contextlib
import os

from lxrun.errors import HostUnsupported, SpecError, host_errors
from lxrun.oci.container import (
    CREATED,
    PAUSED,
    PAUSED_MARK,
    RUNNING,
    STOPPED,
    OciError,
    container_cgroup,
    container_dir,
    load_state,
    status,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from lxrun.cgroups import TaskCgroup
    from lxrun.layout import Layout

# linux.resources fields update applies: through config.resource_limits, as create's. memory.swap is
# read and left alone there too (lxrun's memory limit grants no swap: docker's --memory-swap = --memory).
# A period without a quota changes nothing (lxrun's CPU limit is the quota's share of its period).
UPDATABLE = frozenset(
    {"memory.limit", "memory.swap", "cpu.shares", "cpu.quota", "cpu.period", "cpu.cpus", "pids.limit"}
)
# The Limits field an error of the cgroup or of Limits names -> the linux.resources field it came from.
RESOURCE_OF_FIELD = {
    "memory": "memory.limit",
    "cpus": "cpu.quota",
    "cpu_shares": "cpu.shares",
    "cpus/cpu_shares": "cpu.quota/cpu.shares",
    "pids": "pids.limit",
    "cpuset_cpus": "cpu.cpus",
}
# runc update's flags -> (linux.resources field, how the value reads: size, int or text).
UPDATE_FLAGS = {
    "--memory": ("memory.limit", "size"),
    "--memory-swap": ("memory.swap", "size"),
    "--memory-reservation": ("memory.reservation", "size"),
    "--cpu-period": ("cpu.period", "int"),
    "--cpu-quota": ("cpu.quota", "int"),
    "--cpu-share": ("cpu.shares", "int"),
    "--cpu-rt-period": ("cpu.realtimePeriod", "int"),
    "--cpu-rt-runtime": ("cpu.realtimeRuntime", "int"),
    "--cpu-burst": ("cpu.burst", "int"),
    "--cpuset-cpus": ("cpu.cpus", "text"),
    "--cpuset-mems": ("cpu.mems", "text"),
    "--pids-limit": ("pids.limit", "int"),
    "--blkio-weight": ("blockIO.weight", "int"),
}
NO_LIMIT = 2**64 - 1  # what runc's stats say for a limit that is "max"


def _running(layout: Layout, container_id: str, verb: str) -> tuple[dict[str, Any], str]:
    data = load_state(layout, container_id)
    current = status(layout, data)
    if current == STOPPED:
        raise OciError(verb, "container not running", path=container_id)
    return data, current


def _cgroup(layout: Layout, data: dict[str, Any], verb: str) -> TaskCgroup:
    cgroup: TaskCgroup | None = container_cgroup(layout, data)
    if cgroup is None:
        raise HostUnsupported(verb, "the container has no cgroup on this host", path=data["id"])
    return cgroup


def pause(layout: Layout, container_id: str) -> None:
    """Freeze every process of a created or running container (runc pauses both)."""
    data, current = _running(layout, container_id, "pause")
    if current not in (CREATED, RUNNING):
        raise OciError("pause", "container not running", path=container_id)
    cgroup = _cgroup(layout, data, "pause")
    freezer = cgroup.freezer()
    if freezer is None:
        raise HostUnsupported("pause", "the container's cgroup has no freezer", path=container_id)
    cgroup.freeze(True)
    note = f"{container_dir(layout, container_id)}/{PAUSED_MARK}"
    with host_errors("pause", path=note), open(note, "w") as file:
        file.write("\n".join(freezer))


def resume(layout: Layout, container_id: str) -> None:
    data = load_state(layout, container_id)
    if status(layout, data) != PAUSED:
        raise OciError("resume", "container not paused", path=container_id)
    thaw(layout, data)


def thaw(layout: Layout, data: dict[str, Any]) -> None:
    """Thaw the container's cgroup and drop pause's note (kill of a paused container uses it too)."""
    cgroup = container_cgroup(layout, data)
    if cgroup is not None:
        cgroup.freeze(False)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{container_dir(layout, data['id'])}/{PAUSED_MARK}")


def resources_from_options(options: Mapping[str, object]) -> dict[str, Any]:
    """runc update's flags as the linux.resources document --resources would give."""
    from lxrun.options import parse_size

    resources: dict[str, Any] = {}
    for flag, (field, kind) in UPDATE_FLAGS.items():
        text = options.get(flag)
        if not isinstance(text, str):
            continue
        value: int | str = text
        if kind == "size":
            value = parse_size(flag, text)
        elif kind == "int":
            try:
                value = int(text)
            except ValueError as exc:
                raise SpecError(flag, "is not a whole number", path=text) from exc
        group, key = field.split(".")
        resources.setdefault(group, {})[key] = value
    return resources


def update(layout: Layout, container_id: str, resources: Mapping[str, Any]) -> None:
    """Apply linux.resources to the container's cgroup: the limits given are changed, those left out, 0
    or empty kept (runc's reading). A field lxrun can't change: a SpecError naming it."""
    from lxrun.oci.config import resource_limits

    data, _ = _running(layout, container_id, "update")
    if not isinstance(resources, dict):
        raise SpecError("resources", "must be a JSON object (linux.resources)")
    for group, fields in resources.items():
        for key, value in fields.items() if isinstance(fields, dict) else [("", fields)]:
            field = f"{group}.{key}" if key else group
            if field not in UPDATABLE and value not in (None, 0, "", False, [], {}):
                raise SpecError(f"linux.resources.{field}", "lxrun-oci can't update it", hint="leave it out")
    cgroup = _cgroup(layout, data, "update")
    memory_bound, pids_bound = cgroup.bounds()
    for field, bound in (("memory.limit", memory_bound), ("pids.limit", pids_bound)):
        group, key = field.split(".")
        value = resources.get(group, {}).get(key) if isinstance(resources.get(group), dict) else None
        if isinstance(value, int) and value < 0 and bound is not None:  # -1: no limit; none now is as asked
            raise SpecError(f"linux.resources.{field}", "can't be lifted by update", hint="give a limit instead")
    quota = resources.get("cpu", {}).get("quota") if isinstance(resources.get("cpu"), dict) else None
    if isinstance(quota, int) and quota < 0:
        raise SpecError("linux.resources.cpu.quota", "can't be lifted by update", hint="give a quota instead")
    try:
        cgroup.apply(resource_limits(resources))
    except SpecError as exc:
        if exc.step in RESOURCE_OF_FIELD:
            exc.step = f"linux.resources.{RESOURCE_OF_FIELD[exc.step]}"
        raise


def processes(layout: Layout, container_id: str) -> list[int]:
    """The pids (the host's) of every process in the container's cgroup; none once it is gone."""
    data = load_state(layout, container_id)
    cgroup = container_cgroup(layout, data)
    return [] if cgroup is None else cgroup.pids()


def ps_table(pids: Sequence[int], ps_args: Sequence[str]) -> str:
    """`ps` (-ef unless given its options) cut to its header and the container's processes, as runc's."""
    import subprocess

    try:
        done = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise OciError("ps", exc.strerror or str(exc), path="ps") from exc
    if done.returncode != 0:
        raise OciError("ps", f"exit status {done.returncode}: {done.stdout}{done.stderr}")
    header, *lines = done.stdout.splitlines()
    if "PID" not in header.split():
        raise OciError("ps", "couldn't find PID field in ps output")
    column = header.split().index("PID")
    wanted = set(pids)
    kept = [line for line in lines if line.split() and _pid_of(line, column) in wanted]
    return "\n".join([header, *kept]) + "\n"


def _pid_of(line: str, column: int) -> int:
    fields = line.split()
    try:
        return int(fields[column])
    except (IndexError, ValueError) as exc:
        raise OciError("ps", f"unable to parse pid: {line}") from exc


def stats(cgroup: TaskCgroup) -> dict[str, Any]:
    """The container's figures in runc's types.Stats shape (the fields lxrun reads): CPU time in ns,
    memory now, its peak and limit in bytes, processes now and their limit (a limit of "max": 2**64-1)."""
    usage = cgroup.usage()
    memory_limit, pids_limit = cgroup.bounds()
    user = round((usage.cpu_user or 0.0) * 1e9)
    kernel = round((usage.cpu_system or 0.0) * 1e9)
    memory: dict[str, int] = {"limit": NO_LIMIT if memory_limit is None else memory_limit}
    current = cgroup.current_memory()
    if current:
        memory["usage"] = current
    if usage.peak_memory:
        memory["max"] = usage.peak_memory
    pids = {"current": len(cgroup.pids())}
    if pids_limit is not None:
        pids["limit"] = pids_limit
    return {
        "cpu": {"usage": {"total": user + kernel, "kernel": kernel, "user": user}},
        "memory": {"usage": memory},
        "pids": pids,
    }


def parse_interval(text: str) -> float:
    """A Go duration (`5s`, `1m30s`, `250ms`) in seconds, as runc's --interval."""
    import re

    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise SpecError("--interval", "is not a duration", path=text, hint="e.g. 5s, 500ms, 1m")
    seconds = sum(float(number) * units[unit] for number, unit in parts)
    if seconds <= 0:
        raise SpecError("--interval", "duration interval must be greater than 0", path=text)
    return seconds


def events(layout: Layout, container_id: str, interval: float | None, emit: Callable[[dict[str, Any]], None]) -> None:
    """runc events: `interval` None: one stats event; else a stats event every `interval` seconds, and an
    oom event when the kernel has OOM-killed in the container since the last, until the container stops."""
    import select

    data = load_state(layout, container_id)
    if status(layout, data) == STOPPED:
        raise OciError("events", f"container with id {container_id} is not running")
    cgroup = _cgroup(layout, data, "events")
    if interval is None:
        emit({"type": "stats", "id": container_id, "data": stats(cgroup)})
        return
    with host_errors("events", path=str(data["pid"])):
        pidfd = os.pidfd_open(data["pid"])
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        oom_seen = cgroup.usage().oom_killed
        while not poller.poll(interval * 1000):  # pid 1 gone: the container stopped
            try:
                oom, figures = cgroup.usage().oom_killed, stats(cgroup)
            except FileNotFoundError:  # deleted between pid 1's exit and our poll
                return
            if oom and not oom_seen:
                oom_seen = True
                emit({"type": "oom", "id": container_id})
            emit({"type": "stats", "id": container_id, "data": figures})
    finally:
        os.close(pidfd)
