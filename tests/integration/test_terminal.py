"""A task and the caller's terminal (a pty of the test's, lxrun's controlling terminal, as a user's
shell would give it): without -t the task never holds that terminal (only pipes lxrun relays); with
-t it gets a pty of its own, its size and its keys, and the caller's terminal comes back as it was."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import HANG_GUARD, LXRUN, finish

ROWS, COLS = 37, 111


class UserTerminal:
    """The test holds the master (the keyboard and the screen); lxrun gets the slave on 0-2."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.set_size(ROWS, COLS)
        self.output = b""

    def set_size(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def start(self, root: Path, *args: str) -> subprocess.Popen[bytes]:
        def take_terminal() -> None:  # runs after setsid: the slave becomes lxrun's controlling terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        return subprocess.Popen(
            [LXRUN, "exec", "--root", str(root), "--stack", "busybox", *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
            preexec_fn=take_terminal,
        )

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def read_until(self, text: bytes) -> bytes:
        """What the screen showed up to `text` (the output read so far is kept)."""
        while text not in self.output:
            ready, _, _ = select.select([self.master], [], [], HANG_GUARD)
            assert ready, f"no {text!r} on the screen; it shows {self.output!r}"
            self.output += os.read(self.master, 4096)
        return self.output

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def user() -> Iterator[UserTerminal]:
    terminal = UserTerminal()
    yield terminal
    terminal.close()


def echo_is_on(user: UserTerminal) -> bool:
    return bool(termios.tcgetattr(user.slave)[3] & termios.ECHO)


@pytest.mark.parametrize("interactive", [[], ["-i"]], ids=["no stdin", "-i"])
def test_stty_in_a_task_cannot_change_the_callers_terminal(
    state_root: Path, user: UserTerminal, interactive: list[str]
) -> None:
    script = "stty -echo <&1; stty -echo <&2; stty -echo; echo tried"
    assert finish(user.start(state_root, *interactive, "--", "sh", "-c", script)) == 0
    assert b"tried" in user.read_until(b"tried")
    assert echo_is_on(user)


def test_a_task_without_tty_sees_no_terminal_and_reads_typed_lines_through_a_pipe(
    state_root: Path, user: UserTerminal
) -> None:
    script = 'for fd in 0 1 2; do [ -t $fd ] && echo "fd$fd is a tty"; done; echo ready; read line; echo "got:$line"'
    proc = user.start(state_root, "-i", "--", "sh", "-c", script)
    user.read_until(b"ready")
    user.type(b"typed\n")
    assert finish(proc) == 0
    screen = user.read_until(b"got:typed")
    assert b"is a tty" not in screen


def test_without_i_nothing_typed_is_read(state_root: Path, user: UserTerminal) -> None:
    """Neither a plain task nor -t alone reads the caller's stdin: the typed line is still there after."""
    user.type(b"keep\n")
    assert finish(user.start(state_root, "--", "sh", "-c", "cat; echo plain-done")) == 0
    assert finish(user.start(state_root, "-t", "--", "true")) == 0
    os.set_blocking(user.slave, False)
    assert os.read(user.slave, 100) == b"keep\n"


def test_tty_gives_the_task_a_pty_of_its_own(state_root: Path, user: UserTerminal) -> None:
    script = (
        "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-terminals; stty size; readlink /proc/self/fd/0;"
        " echo to-stderr >&2"
    )
    assert finish(user.start(state_root, "-t", "--", "sh", "-c", script)) == 0
    lines = user.read_until(b"to-stderr").replace(b"\r", b"").split(b"\n")
    assert b"all-terminals" in lines
    assert f"{ROWS} {COLS}".encode() in lines
    pty = next(line.decode() for line in lines if line.startswith(b"/dev/pts/"))
    assert pty != os.ttyname(user.slave)  # a new pty, not the caller's
    assert b"to-stderr" in lines  # stderr joins the terminal, as with docker run -t


def test_ctrl_c_reaches_the_task_as_sigint_and_the_terminal_comes_back(state_root: Path, user: UserTerminal) -> None:
    before = termios.tcgetattr(user.slave)
    script = "trap 'echo got-INT; exit 3' INT; echo ready; while :; do sleep 0.05; done"
    proc = user.start(state_root, "-it", "--", "sh", "-c", script)
    user.read_until(b"ready")
    assert not termios.tcgetattr(user.slave)[3] & termios.ICANON  # raw while the task runs
    user.type(b"\x03")
    assert finish(proc) == 3
    assert b"got-INT" in user.read_until(b"got-INT")
    assert termios.tcgetattr(user.slave) == before


def test_it_gives_an_interactive_shell(state_root: Path, user: UserTerminal) -> None:
    proc = user.start(state_root, "-it", "--", "sh")
    user.type(b"echo $((6 * 7)); exit 5\r")
    assert finish(proc) == 5
    assert b"42" in user.read_until(b"42")


def test_the_pty_follows_the_callers_window(state_root: Path, user: UserTerminal) -> None:
    script = "trap 'stty size; exit 4' WINCH; echo ready; while :; do sleep 0.05; done"
    proc = user.start(state_root, "-t", "--", "sh", "-c", script)
    user.read_until(b"ready")
    user.set_size(50, 120)  # the kernel sends SIGWINCH to lxrun, the foreground of the caller's terminal
    assert finish(proc) == 4
    assert b"50 120" in user.read_until(b"50 120")
