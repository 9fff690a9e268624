"""`lxrun kept ls` and `lxrun kept rm ID...|--all`: the upper dirs tasks kept with --keep."""

from __future__ import annotations

from lxrun.cli.common import Parser, add_root_option
from lxrun.cli.tables import human, render
from lxrun.cli.usage import UsageError
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun kept", "The upper dirs (a task's writes) kept with `lxrun exec --keep`.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=Parser)
    actions.add_parser("ls", help="list them: task id, size, age, path")
    rm = actions.add_parser("rm", help="remove the kept dirs of these tasks (never of a task still running)")
    rm.add_argument("ids", nargs="*", metavar="ID")
    rm.add_argument("--all", action="store_true", help="remove every kept dir whose task has ended")
    for action in actions.choices.values():
        add_root_option(action)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    runtime = Runtime(args.root)
    if args.action == "ls":
        rows = [
            (kept.id, human(kept.size), f"{kept.age:.0f}s", kept.path + (" (running)" if kept.running else ""))
            for kept in runtime.kept()
        ]
        print(render(("ID", "SIZE", "AGE", "UPPER DIR"), rows, right=(1, 2)))
        return 0
    if bool(args.ids) == args.all:
        raise UsageError("lxrun kept rm: give task ids or --all", "lxrun kept rm")
    ids = [kept.id for kept in runtime.kept() if not kept.running] if args.all else args.ids
    for task_id in ids:
        print(f"removed {runtime.remove_kept(task_id)}")
    return 0
