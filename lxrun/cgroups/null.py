"""The null manager: for hosts without usable cgroups. No limits can be set, no usage is measured."""

from __future__ import annotations

from lxrun.cgroups.base import CgroupManager, TaskCgroup
from lxrun.errors import HostUnsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.spec import Limits


class NullManager(CgroupManager):
    version = "none"

    def create(self, name: str, limits: Limits, parent: str | None = None) -> TaskCgroup:
        if limits.any or parent is not None:
            raise HostUnsupported(
                "cgroups",
                "no usable cgroup hierarchy on this host, so limits can't be set",
                hint="mount cgroup2 at /sys/fs/cgroup (or the v1 controllers), or run without limits",
            )
        return TaskCgroup({})
