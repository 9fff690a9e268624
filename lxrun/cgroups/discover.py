"""Which cgroup hierarchies this host has and where this process sits in them; picks the manager.

The one reader of /proc/self/mountinfo and /proc/self/cgroup for cgroups: as v1 controller and
cgroup2 maps for the managers, and as a list of every hierarchy (named ones such as name=systemd
included) for the cgroup trees of the lxc and docker backends (tree.py).
"""

from __future__ import annotations

import os

from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.cgroups.base import CgroupManager

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "cpuset", "freezer", "devices")


class Hierarchy(Record):
    """One mounted cgroup hierarchy and the cgroup this process is in there (relative to the mount)."""

    __slots__ = ("controllers", "mount", "own", "unified")
    mount: str
    own: str
    controllers: frozenset[str]
    unified: bool

    def __init__(self, mount: str, own: str, controllers: frozenset[str], unified: bool) -> None:
        super().__init__(mount=mount, own=own, controllers=controllers, unified=unified)

    def path(self, relative: str) -> str:
        return f"{self.mount}{self.own.rstrip('/')}/{relative}"


def cgroup_mount_entries(mountinfo: str) -> list[tuple[str, str, str, frozenset[str]]]:
    """(fstype, root, mount point, super options) of every cgroup and cgroup2 mount, from mountinfo text."""
    entries = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        separator = fields.index("-")
        fstype = fields[separator + 1]
        if fstype in ("cgroup", "cgroup2"):
            options = frozenset(fields[separator + 3].split(","))
            entries.append((fstype, fields[3], fields[4].replace("\\040", " "), options))
    return entries


def memberships(proc_self_cgroup: str) -> list[tuple[frozenset[str], str]]:
    """(controllers, cgroup path) per line of /proc/self/cgroup text; no controllers is the cgroup2 line."""
    found = []
    for line in proc_self_cgroup.splitlines():
        _, names, path = line.split(":", 2)
        found.append((frozenset(names.split(",")) if names else frozenset(), path))
    return found


def cgroup_mounts(mountinfo: str) -> tuple[dict[str, str], str | None]:
    """v1 controller -> its mount point, and the cgroup2 mount point (None if none), from mountinfo text."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for fstype, _, mount_point, options in cgroup_mount_entries(mountinfo):
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for option in options & set(V1_CONTROLLERS):
                v1.setdefault(option, mount_point)
    return v1, v2


def own_cgroups(proc_self_cgroup: str) -> tuple[dict[str, str], str | None]:
    """v1 controller -> this process's cgroup path, and its cgroup2 path, from /proc/self/cgroup text."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for controllers, path in memberships(proc_self_cgroup):
        if not controllers:
            v2 = path
        for controller in controllers & set(V1_CONTROLLERS):
            v1[controller] = path
    return v1, v2


def hierarchies(proc_self_cgroup: str, mountinfo: str) -> list[Hierarchy]:
    """Every hierarchy this process is in, where it is mounted, with its cgroup there (a mount of a
    subtree, root /runner, holds /runner/job as /job). cgroup2's controllers are read from its cgroup."""
    mounts = cgroup_mount_entries(mountinfo)
    found = []
    for controllers, own in memberships(proc_self_cgroup):
        for fstype, root, mount_point, options in mounts:
            unified = fstype == "cgroup2"
            if not ((unified and not controllers) or (not unified and controllers and controllers <= options)):
                continue
            if root != "/" and own != root and not own.startswith(f"{root}/"):
                continue
            inside = own[len(root) :] if root != "/" else own
            names = _v2_controllers(mount_point, inside) if unified else controllers
            found.append(Hierarchy(mount_point, inside or "/", names, unified))
            break
    return found


def _v2_controllers(mount_point: str, own: str) -> frozenset[str]:
    try:
        with open(f"{mount_point}{own.rstrip('/')}/cgroup.controllers") as file:
            return frozenset(file.read().split())
    except OSError:
        return frozenset()


def own_hierarchies() -> list[Hierarchy]:
    with open("/proc/self/cgroup") as cgroup, open("/proc/self/mountinfo") as mountinfo:
        return hierarchies(cgroup.read(), mountinfo.read())


def detect(mountinfo_path: str = "/proc/self/mountinfo", cgroup_path: str = "/proc/self/cgroup") -> CgroupManager:
    """v1 when memory is a v1 controller (a v1 or hybrid host), v2 when cgroup2 carries the controllers,
    else the null manager (no limits, no usage figures)."""
    from lxrun.cgroups.null import NullManager

    with open(mountinfo_path) as file:
        v1_mounts, v2_mount = cgroup_mounts(file.read())
    with open(cgroup_path) as file:
        v1_own, v2_own = own_cgroups(file.read())
    if "memory" in v1_mounts and "memory" in v1_own:
        from lxrun.cgroups.v1 import V1Manager

        mounts = {name: point for name, point in v1_mounts.items() if name in v1_own}
        return V1Manager(mounts, {name: v1_own[name] for name in mounts})
    if v2_mount is not None and v2_own is not None and os.path.exists(f"{v2_mount}/cgroup.controllers"):
        from lxrun.cgroups.v2 import V2Manager

        return V2Manager(v2_mount, v2_own)
    return NullManager()
