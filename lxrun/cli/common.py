"""What every verb shares: a parser whose errors are one line and exit 125, and the --root option."""

from __future__ import annotations

import argparse

from lxrun.layout import ROOT_ENV, default_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXIT_LXRUN_FAILED = 125


class UsageError(Exception):
    """Bad command-line input: printed as one line with where to look, exit 125."""

    def __init__(self, message: str, help_command: str) -> None:
        super().__init__(f"{message} (see `{help_command} --help`)")


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
        default=default_root(),
        metavar="DIR",
        help=f"state root: layers, stacks, tasks in flight (env {ROOT_ENV}; default %(default)s)",
    )
