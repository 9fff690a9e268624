"""What every verb shares: a parser whose errors are one line and exit 125, the --root option, and
signals that stop a long job (a build) by unwinding it. (`lxrun exec` parses its options itself.)"""

from __future__ import annotations

import argparse
import contextlib
import signal

from lxrun.cli.usage import UsageError, root_arg
from lxrun.runtime import ROOT_ENV, default_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType
    from typing import Any


class Parser(argparse.ArgumentParser):
    """argparse with docker's habits: no abbreviated options, errors as one line (exit 125)."""

    def __init__(self, prog: str | None = None, description: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(prog=prog, description=description, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", self.prog)


def add_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=root_arg,
        default=default_root(),
        metavar="DIR",
        help=f"state root: layers, stacks, tasks in flight (env {ROOT_ENV}; default %(default)s)",
    )


class Terminated(BaseException):
    """SIGTERM or SIGHUP during a long job, raised like KeyboardInterrupt so the job unwinds and cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def terminating() -> Iterator[None]:
    """While a build runs: SIGTERM and SIGHUP raise Terminated (Ctrl-C already raises KeyboardInterrupt)."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupted_code(exc: BaseException) -> int:
    """The exit code of a job stopped by a signal: 128+N, as a shell reports it."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
