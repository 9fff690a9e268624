"""Which cgroup hierarchies this host has and where this process sits in them; picks the manager."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.cgroups.base import CgroupManager

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "cpuset", "freezer", "devices")


def cgroup_mounts(mountinfo: str) -> tuple[dict[str, str], str | None]:
    """v1 controller -> its mount point, and the cgroup2 mount point (None if none), from mountinfo text."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line:
            continue
        separator = fields.index("-")
        fstype, super_options = fields[separator + 1], fields[separator + 3]
        mount_point = fields[4].replace("\\040", " ")
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for option in super_options.split(","):
                if option in V1_CONTROLLERS:
                    v1.setdefault(option, mount_point)
    return v1, v2


def own_cgroups(proc_self_cgroup: str) -> tuple[dict[str, str], str | None]:
    """v1 controller -> this process's cgroup path, and its cgroup2 path, from /proc/self/cgroup text."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in proc_self_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            v2 = path
        for controller in controllers.split(","):
            if controller in V1_CONTROLLERS:
                v1[controller] = path
    return v1, v2


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
