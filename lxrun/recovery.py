"""`lxrun gc` for tasks: find the records of tasks whose runner is gone and release what they held.

Everything a task holds on the host is named after its id (its cgroups, kept/<id>/work, its --name
link), so a record, even one torn by a crash mid-write, is enough to find it all. Tasks whose
runner still runs are never touched; gc is idempotent and safe while other tasks run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from lxrun.state import records, runner_alive, task_cgroup_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxrun.cgroups import CgroupManager
    from lxrun.layout import Layout

UNREADABLE_GRACE = 5.0  # seconds: a record this young may still be being written by a live runner


def _stale(layout: Layout, task_id: str, data: dict[str, Any] | None) -> bool:
    if data is not None:
        return not runner_alive(data)
    try:
        age = time.time() - os.stat(layout.task(task_id)).st_mtime
    except FileNotFoundError:
        return False
    return age > UNREADABLE_GRACE


def release_task(
    layout: Layout, cgroups: CgroupManager, task_id: str, data: dict[str, Any] | None, dry_run: bool
) -> list[str]:
    """Release one dead runner's task; returns what was (or, dry, would be) released."""
    released = []
    parent = data.get("cgroup_parent") if data else None
    backend = data.get("backend") if data else None
    if backend == "lxc":
        from lxrun.backends.lxc import release_leftovers

        released += release_leftovers(layout, task_id, dry_run)
    elif backend == "docker":
        from lxrun.backends.docker import release_leftovers as release_docker

        released += release_docker(task_id, parent, dry_run)
    cgroup = cgroups.find(task_cgroup_name(task_id), parent)
    if cgroup is not None:
        released.append(f"cgroup {', '.join(cgroup.dirs.values())} (killing {len(cgroup.pids())} processes)")
        if not dry_run:
            cgroup.kill_all()
            cgroup.remove()
    work = f"{layout.kept_task(task_id)}/work"
    if os.path.isdir(work):
        released.append(f"overlay work dir {work} (the kept upper dir stays)")
        if not dry_run:
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


def collect(layout: Layout, cgroups: CgroupManager, dry_run: bool = False) -> dict[str, list[str]]:
    """Release every task whose runner is gone: task id -> what was released."""
    found: dict[str, list[str]] = {}
    for task_id, data in records(layout):
        if _stale(layout, task_id, data) and os.path.exists(layout.task(task_id)):
            found[task_id] = release_task(layout, cgroups, task_id, data, dry_run)
    for name in os.listdir(layout.names) if os.path.isdir(layout.names) else []:
        link = f"{layout.names}/{name}"
        holder = os.readlink(link) if os.path.islink(link) else None
        if holder is None or not os.path.exists(layout.task(holder)):
            found.setdefault(f"name:{name}", []).append(f"name {name} (its task is gone)")
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(link)
    if not dry_run:
        removed = cgroups.remove_idle_parents()
        if removed:
            found["cgroup parents"] = [f"idle cgroup {path}" for path in removed]
        if os.path.isdir(layout.net):
            from lxrun.net.gc import gc_network  # bridge networking was used on this state root

            net = gc_network(layout)
            items = [f"veth {v}" for v in net.veths] + [f"address lease {a}" for a in net.leases]
            items += [f"{net.elements} published-port rules"] if net.elements else []
            items += list(net.shared)
            if items:
                found["network parts"] = items
    return found
