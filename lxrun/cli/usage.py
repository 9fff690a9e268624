"""What every verb's bad input turns into: one line naming the problem and where to look, exit 125.

Apart from the argparse-based common.py, so `lxrun exec`, which parses its options itself, does not
import argparse to report an error.
"""

EXIT_LXRUN_FAILED = 125


class UsageError(Exception):
    """Bad command-line input: printed as one line with where to look, exit 125."""

    def __init__(self, message: str, help_command: str) -> None:
        super().__init__(f"{message} (see `{help_command} --help`)")


PATH_MAX = 4096  # bytes, the terminating NUL included


def root_arg(value: str) -> str:
    """--root: a path (empty would mean the working directory; past PATH_MAX it can't name one)."""
    import os

    if not value or len(os.fsencode(value)) >= PATH_MAX:
        what = "is empty" if not value else f"is longer than {PATH_MAX - 1} bytes"
        raise UsageError(f"lxrun: argument --root: {what}", "lxrun")
    return value
