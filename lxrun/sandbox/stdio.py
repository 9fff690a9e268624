"""The task's standard streams: the descriptors the sandbox gets, and the Relay that serves them.

stdout/stderr go straight to the caller's descriptor when nothing needs to see them; through a pipe
into a StreamSink when they are captured or capped by an output limit. A terminal of the caller's
never reaches the task: where stdin, stdout or stderr would be one, the task gets a pipe that lxrun
relays, so it can neither read the terminal nor change it. With `tty`, the task gets a pty of its
own instead (its stdin, stdout and stderr, as under `docker run -t`) whose master lxrun relays.
TaskStdio owns every descriptor it opens (/dev/null for stdin, the child's ends, through its Relay
lxrun's ends) and closes them all; the caller's stay theirs.
"""

from __future__ import annotations

import contextlib
import os

from lxrun.errors import SetupError
from lxrun.sandbox.output import StreamSink
from lxrun.sandbox.relay import Relay

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

    from lxrun.spec import TaskSpec


class TaskStdio:
    def __init__(self, spec: TaskSpec) -> None:
        self._resources = contextlib.ExitStack()
        self._child_ends: list[int] = []
        self.relay = self._resources.enter_context(contextlib.closing(Relay()))
        self.streams: dict[str, StreamSink] = {}  # "stdout"/"stderr" -> sink
        self._terminal: int | None = None  # the caller's terminal a pty takes its size from
        self._pty = -1
        try:
            if spec.tty:
                self._open_pty(spec)
            else:
                self.stdin_fd = self._input(spec.stdin)
                self.stdout_fd = self._output("stdout", spec.stdout, spec.output_limit)
                self.stderr_fd = self._output("stderr", spec.stderr, spec.output_limit)
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError):
                raise SetupError.from_os_error("task stdio", exc) from exc
            raise

    def _child_end(self, fd: int) -> int:
        self._child_ends.append(fd)
        return fd

    def _input(self, source: int | None) -> int:
        if source is None:
            return self._child_end(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        if not os.isatty(source):
            return source
        read_end, write_end = os.pipe()
        self._child_end(read_end)
        self.relay.add_input(source, write_end, close_at_end=True)
        return read_end

    def _output(self, stream: str, target: int | str, limit: int | None) -> int:
        target_fd = target if isinstance(target, int) else None
        if target_fd is not None and limit is None and not os.isatty(target_fd):
            return target_fd
        read_end, write_end = os.pipe()
        self.relay.add_output(read_end, StreamSink(target_fd, limit))
        self.streams[stream] = self.relay.outputs[read_end]
        return self._child_end(write_end)

    def _open_pty(self, spec: TaskSpec) -> None:
        """A new pty: its slave is all three of the task's streams, its master carries stdout (stderr
        merged, as docker's -t does) and, with stdin, the caller's input. The caller's terminal, if
        any, lends its size, and with stdin is put in raw mode while the task runs, so every key
        (Ctrl-C too) reaches the task's terminal, which acts on it."""
        from lxrun.sandbox import terminal

        master, slave = os.openpty()
        self._child_end(slave)
        self._pty = master
        self.stdin_fd = self.stdout_fd = self.stderr_fd = slave
        target = spec.stdout if isinstance(spec.stdout, int) else None
        self.relay.add_output(master, StreamSink(target, spec.output_limit))
        self.streams["stdout"] = self.relay.outputs[master]
        callers = [fd for fd in (target, spec.stdin, spec.stderr) if isinstance(fd, int)]
        self._terminal = next((fd for fd in callers if os.isatty(fd)), None)
        self.resize()
        if spec.stdin is not None:
            self.relay.add_input(spec.stdin, master, close_at_end=False)
            if os.isatty(spec.stdin):
                self._resources.enter_context(terminal.raw(spec.stdin))

    def resize(self) -> bool:
        """The task's pty takes the caller's terminal's size (its foreground processes get SIGWINCH).
        False without a pty (or once it has ended: its master is closed then)."""
        if self._pty not in self.relay.outputs:
            return False
        if self._terminal is not None:
            from lxrun.sandbox import terminal

            with contextlib.suppress(OSError):  # a terminal that went away: the pty keeps the size it had
                terminal.copy_size(self._terminal, self._pty)
        return True

    def close_child_ends(self) -> None:
        """After the spawn: our copies of the child's ends must go, or the pipes never end."""
        for fd in self._child_ends:
            os.close(fd)
        self._child_ends.clear()

    def finish(self) -> tuple[dict[str, bytes | None], bool]:
        """Flush every sink: the captured bytes per stream, and whether any output was cut."""
        captured = {stream: sink.finish() for stream, sink in self.streams.items()}
        return captured, any(sink.truncated for sink in self.streams.values())

    def close(self) -> None:
        self.close_child_ends()
        self._resources.close()

    def __enter__(self) -> TaskStdio:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
