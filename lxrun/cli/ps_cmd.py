"""`lxrun ps`: the tasks in flight on this state root, with what they use now."""

from __future__ import annotations

import json

from lxrun.cli.common import Parser, add_root_option
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun ps", "List the tasks in flight: id, name, stack, pid, age, memory, cpu.")
    p.add_argument("--json", action="store_true", help="one JSON object per task instead of a table")
    add_root_option(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    tasks = Runtime(args.root).ps()
    if args.json:
        for task in tasks:
            print(json.dumps(task.to_json()))
        return 0
    print(f"{'ID':<14}{'NAME':<16}{'STACK':<22}{'PID':>8}{'AGE':>9}{'MEMORY':>10}{'CPU':>9}  STATE")
    for task in tasks:
        memory = f"{task.memory / (1 << 20):.1f}M" if task.memory is not None else "-"
        cpu = f"{task.cpu:.2f}s" if task.cpu is not None else "-"
        age = task.age if task.age is not None else 0
        print(
            f"{task.id:<14}{task.name or '-':<16}{task.stack or '-':<22}{task.pid or '-':>8}"
            f"{age:>8}s{memory:>10}{cpu:>9}  {task.state}"
        )
    return 0
