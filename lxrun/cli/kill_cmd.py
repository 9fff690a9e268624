"""`lxrun kill ID|NAME [--signal SIG]`: signal a task in flight (its pid 1 passes it on to the task)."""

from __future__ import annotations

import signal

from lxrun.cli.common import Parser, add_root_option
from lxrun.errors import SpecError
from lxrun.runtime import Runtime


def parser() -> Parser:
    p = Parser("lxrun kill", "Send a signal to a task in flight (default SIGKILL, as docker kill).")
    p.add_argument("task", metavar="ID|NAME")
    p.add_argument("-s", "--signal", default="KILL", help="signal name or number (default %(default)s)")
    add_root_option(p)
    return p


def parse_signal(text: str) -> int:
    name = text.upper().removeprefix("SIG")
    if text.isdigit() and len(text) < 4 and 0 < int(text) < signal.NSIG:
        return int(text)
    try:
        return int(signal.Signals[f"SIG{name}"])
    except KeyError:
        raise SpecError("--signal", "is not a signal", path=text, hint="e.g. TERM, KILL, HUP or a number") from None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    print(Runtime(args.root).kill(args.task, parse_signal(args.signal)))
    return 0
