"""The caller's terminal while a task with a pty of its own runs: raw mode (restored on every path)
and the window size the task's pty copies. Imported only by tasks that have a pty (`tty`).
"""

from __future__ import annotations

import contextlib
import fcntl
import signal
import termios
import tty

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def _quiet_background() -> Iterator[None]:
    """SIGTTOU held back: changing the terminal from a background job is allowed then, rather than
    stopping lxrun (or, with the signal caught, retrying forever)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


@contextlib.contextmanager
def raw(fd: int) -> Iterator[None]:
    """`fd`'s terminal in raw mode: every byte (Ctrl-C, Ctrl-D, Ctrl-Z) goes through to the task's
    pty, whose own line discipline acts on it; the caller's settings come back afterwards."""
    with _quiet_background():
        saved = termios.tcgetattr(fd)
        tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        with _quiet_background():
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def copy_size(source: int, pty_master: int) -> None:
    """The pty takes `source`'s window size (rows, columns, pixels)."""
    size = fcntl.ioctl(source, termios.TIOCGWINSZ, bytes(8))
    fcntl.ioctl(pty_master, termios.TIOCSWINSZ, size)
