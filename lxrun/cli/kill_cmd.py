"""`lxrun kill ID|NAME [--signal SIG]`: signal a task in flight (its pid 1 passes it on to the task)."""

from __future__ import annotations

import os
import signal

from lxrun.cli.common import Parser, add_root_option
from lxrun.errors import LxrunError, SpecError
from lxrun.layout import Layout
from lxrun.state import find_task, live_pid


def parser() -> Parser:
    p = Parser("lxrun kill", "Send a signal to a task in flight (default SIGKILL, as docker kill).")
    p.add_argument("task", metavar="ID|NAME")
    p.add_argument("-s", "--signal", default="KILL", help="signal name or number (default %(default)s)")
    add_root_option(p)
    return p


def parse_signal(text: str) -> int:
    name = text.upper().removeprefix("SIG")
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    try:
        return int(signal.Signals[f"SIG{name}"])
    except KeyError:
        raise SpecError("--signal", "is not a signal", path=text, hint="e.g. TERM, KILL, HUP or a number") from None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    sig = parse_signal(args.signal)
    task_id, data = find_task(Layout(args.root), args.task)
    pid = live_pid(data)  # the task's pid 1 on every backend: it passes the signal on to the task
    if pid is None:
        raise LxrunError("kill", "the task has no process to signal (starting or ending)", path=task_id)
    os.kill(pid, sig)
    print(task_id)
    return 0
