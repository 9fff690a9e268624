"""`lxrun df`: what the stacks cost on disk as a base plus diffs, next to what they would as flattened images."""

from __future__ import annotations

from lxrun.cli.common import Parser, add_root_option
from lxrun.cli.tables import human, render
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun df", "Disk used by the current version of every stack: shared layers vs flattened images.")
    add_root_option(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    usage = Runtime(args.root).df()
    rows = [(cost.version.ref, str(len(cost.layers)), human(cost.own), human(cost.flattened)) for cost in usage.stacks]
    print(render(("STACK", "LAYERS", "OWN", "FLATTENED"), rows, right=(1, 2, 3)))
    count = len(usage.stacks)
    ratio = f" ({usage.flattened / usage.as_layers:.1f}x)" if usage.as_layers else ""
    print(f"\n{count} stacks as layers, each stored once: {human(usage.as_layers)}")
    print(f"{count} stacks as flattened images:        {human(usage.flattened)}{ratio}")
    return 0
