"""`lxrun gc [--dry-run] [--layers]`: release what dead runners left; with --layers, layers nothing uses.

Safe while tasks and builds run: what a live runner holds is never touched, and running it twice
changes nothing the second time.
"""

from __future__ import annotations

from lxrun.cgroups import detect
from lxrun.cli.common import Parser, add_root_option
from lxrun.cli.tables import human
from lxrun.layout import Layout
from lxrun.recovery import collect


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
    layout = Layout(args.root)
    verb = "would release" if args.dry_run else "released"
    released = collect(layout, detect(), dry_run=args.dry_run)
    for owner, items in released.items():
        for item in items:
            print(f"{verb} {item}" + (f" (task {owner})" if ":" not in owner and " " not in owner else ""))
    tasks = sum(1 for owner in released if ":" not in owner and " " not in owner)
    if tasks or not args.layers:
        print(f"{tasks} dead runners' tasks {verb}")
    if args.layers:
        from lxrun.store.gc import collect_layers, held_layers
        from lxrun.store.layers import LayerStore

        if args.dry_run:
            unused = sorted(set(LayerStore(layout).digests()) - held_layers(layout))
            for digest in unused:
                print(f"would remove layer {digest[:12]}")
            return 0
        collected = collect_layers(layout)
        for digest in collected.layers:
            print(f"removed layer {digest[:12]}")
        for path in collected.abandoned:
            print(f"removed {path} (left by a killed build)")
        print(f"{len(collected.layers)} layers removed, {human(collected.bytes)} freed")
    return 0
