"""`lxrun inspect ID|NAME`: a task in flight's record and live usage, as JSON."""

from __future__ import annotations

import json

from lxrun.cli.common import Parser, add_root_option
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun inspect", "Show a task in flight: its record and what it uses now, as JSON.")
    p.add_argument("task", metavar="ID|NAME")
    add_root_option(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    print(json.dumps(Runtime(args.root).inspect(args.task).to_json(with_record=True), indent=1))
    return 0
