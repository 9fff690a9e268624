"""What a task of any backend leaves under the state root when its runner dies: its kept upper dir's
overlay work dir, its --name link, its record (released last, so a gc cut short finds the task again).

Each backend's `release_leftovers` releases its own host resources first, then these.
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from lxrun.cgroups import CgroupManager
    from lxrun.layout import Layout


def release_task_files(layout: Layout, task_id: str, data: Mapping[str, Any] | None, dry_run: bool) -> list[str]:
    released = []
    work = f"{layout.kept_task(task_id)}/work"
    if os.path.isdir(work):
        released.append(f"overlay work dir {work} (the kept upper dir stays)")
        if not dry_run:
            import shutil  # ~1.5 ms of imports (bz2, lzma, fnmatch): only when a leftover is there

            shutil.rmtree(work, ignore_errors=True)
    name = data.get("name") if data else None
    link = f"{layout.names}/{name}"
    if name and os.path.islink(link) and os.readlink(link) == task_id:
        released.append(f"name {name}")
        if not dry_run:
            os.unlink(link)
    released.append(f"record {layout.task(task_id)}")
    if not dry_run:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.task(task_id))
    return released


def release_cgroup_task(
    layout: Layout, cgroups: CgroupManager, task_id: str, data: Mapping[str, Any] | None, dry_run: bool
) -> list[str]:
    """A task whose sandbox has a cgroup of its own (native's, an OCI container's): that cgroup, killing
    what is left in it, then release_task_files."""
    from lxrun.state import task_cgroup_name

    released = []
    cgroup = cgroups.find(task_cgroup_name(task_id), data.get("cgroup_parent") if data else None)
    if cgroup is not None:
        released.append(f"cgroup {', '.join(cgroup.dirs.values())} (killing {len(cgroup.pids())} processes)")
        if not dry_run:
            cgroup.kill_all()
            cgroup.remove()
    return released + release_task_files(layout, task_id, data, dry_run)
