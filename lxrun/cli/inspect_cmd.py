"""`lxrun inspect ID|NAME`: a task in flight's record and live usage, as JSON."""

from __future__ import annotations

import json

from lxrun.cli.common import Parser, add_root_option
from lxrun.cli.ps_cmd import row
from lxrun.layout import Layout
from lxrun.state import find_task


def parser() -> Parser:
    p = Parser("lxrun inspect", "Show a task in flight: its record and what it uses now, as JSON.")
    p.add_argument("task", metavar="ID|NAME")
    add_root_option(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    task_id, data = find_task(Layout(args.root), args.task)
    print(json.dumps({**data, **row(task_id, data)}, indent=1))
    return 0
