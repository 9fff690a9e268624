"""`lxrun ps`: the tasks in flight on this state root, with what they use now."""

from __future__ import annotations

import json
import time

from lxrun.cgroups import detect
from lxrun.cli.common import Parser, add_root_option
from lxrun.layout import Layout
from lxrun.state import live_pid, records, runner_alive, task_cgroup_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxrun.cgroups.base import Usage


def parser() -> Parser:
    p = Parser("lxrun ps", "List the tasks in flight: id, name, stack, pid, age, memory, cpu.")
    p.add_argument("--json", action="store_true", help="one JSON object per task instead of a table")
    add_root_option(p)
    return p


def row(task_id: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """One task as shown by ps: its record plus live usage from its cgroup (None once gone)."""
    if data is None:
        return {"id": task_id, "state": "unreadable"}
    pid = live_pid(data)
    usage, memory = task_usage(task_id, data, pid)
    return {
        "id": task_id,
        "name": data.get("name"),
        "stack": data.get("stack"),
        "pid": pid,
        "age": round(time.time() - data.get("created", time.time()), 1),
        "memory": memory,
        "cpu": round((usage.cpu_user or 0) + (usage.cpu_system or 0), 3) if usage else None,
        "state": "running" if runner_alive(data) else "orphaned (lxrun gc releases it)",
        "command": data.get("command"),
    }


def task_usage(task_id: str, data: dict[str, Any], pid: int | None) -> tuple[Usage | None, int | None]:
    """What the task's cgroup counted so far: the cgroup its live pid 1 is in (any backend), or while
    it starts, the native task cgroup of its name."""
    cgroup = None
    try:
        if pid is not None:
            cgroup = detect(cgroup_path=f"/proc/{pid}/cgroup").own_cgroup()
        else:
            cgroup = detect().find(task_cgroup_name(task_id), data.get("cgroup_parent"))
        return (cgroup.usage(), cgroup.current_memory()) if cgroup is not None else (None, None)
    except OSError:  # it ended while we looked
        return None, None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    rows = [row(task_id, data) for task_id, data in records(Layout(args.root))]
    if args.json:
        for item in rows:
            print(json.dumps(item))
        return 0
    print(f"{'ID':<14}{'NAME':<16}{'STACK':<22}{'PID':>8}{'AGE':>9}{'MEMORY':>10}{'CPU':>9}  STATE")
    for item in rows:
        memory = f"{item['memory'] / (1 << 20):.1f}M" if item.get("memory") is not None else "-"
        cpu = f"{item['cpu']:.2f}s" if item.get("cpu") is not None else "-"
        print(
            f"{item['id']:<14}{item.get('name') or '-':<16}{item.get('stack') or '-':<22}{item.get('pid') or '-':>8}"
            f"{item.get('age', 0):>8}s{memory:>10}{cpu:>9}  {item['state']}"
        )
    return 0
