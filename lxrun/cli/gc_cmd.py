"""`lxrun gc [--dry-run] [--layers]`: release what dead runners left; with --layers, layers nothing uses.

Safe while tasks and builds run: what a live runner holds is never touched, and running it twice
changes nothing the second time.
"""

from __future__ import annotations

from lxrun.cli.common import Parser, add_root_option
from lxrun.cli.tables import human
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun gc", "Release what dead runners left behind: tasks' cgroups, names, records, idle parents.")
    p.add_argument("--dry-run", action="store_true", help="list what would be released, release nothing")
    p.add_argument(
        "--layers",
        action="store_true",
        help="also remove layers no stack version references (see `lxrun stack rm`), and builds killed midway",
    )
    add_root_option(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    report = Runtime(args.root).gc(dry_run=args.dry_run, layers=args.layers)
    verb = "would release" if args.dry_run else "released"
    for task_id, items in report.released.tasks.items():
        for item in items:
            print(f"{verb} {item} (task {task_id})")
    for item in report.released.other:
        print(f"{verb} {item}")
    tasks = len(report.released.tasks)
    if tasks or report.layers is None:
        print(f"{tasks} dead runners' tasks {verb}")
    if report.layers is not None:
        if args.dry_run:
            for digest in report.layers.layers:
                print(f"would remove layer {digest[:12]}")
            return 0
        for digest in report.layers.layers:
            print(f"removed layer {digest[:12]}")
        for path in report.layers.abandoned:
            print(f"removed {path} (left by a killed build)")
        print(f"{len(report.layers.layers)} layers removed, {human(report.layers.bytes)} freed")
    return 0
