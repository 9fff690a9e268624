"""What every verb's bad input turns into: one line naming the problem and where to look, exit 125.

Apart from the argparse-based common.py, so `lxrun exec`, which parses its options itself, does not
import argparse to report an error.
"""

EXIT_LXRUN_FAILED = 125


class UsageError(Exception):
    """Bad command-line input: printed as one line with where to look, exit 125."""

    def __init__(self, message: str, help_command: str) -> None:
        super().__init__(f"{message} (see `{help_command} --help`)")
