"""`lxrun gc --layers`: remove layers no stack version references and no running task or build holds."""

from __future__ import annotations

from lxrun.cli.common import Parser, UsageError, add_root_option
from lxrun.cli.tables import human
from lxrun.layout import Layout


def parser() -> Parser:
    p = Parser("lxrun gc", "Remove what nothing uses any more.")
    p.add_argument(
        "--layers",
        action="store_true",
        help="layers no stack version references (see `lxrun stack rm`), and builds killed midway",
    )
    add_root_option(p)
    return p


def main(argv: list[str]) -> int:
    from lxrun.store.gc import collect_layers

    args = parser().parse_args(argv)
    if not args.layers:
        raise UsageError("lxrun gc: say what to collect: --layers", "lxrun gc")
    collected = collect_layers(Layout(args.root))
    for digest in collected.layers:
        print(f"removed layer {digest[:12]}")
    for path in collected.abandoned:
        print(f"removed {path} (left by a killed build)")
    print(f"{len(collected.layers)} layers removed, {human(collected.bytes)} freed")
    return 0
