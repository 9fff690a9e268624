"""Moving a task's bytes while it runs: its output from the pipes (or pty master) lxrun reads into
their sinks, and the caller's input into the task's stdin pipe (or pty master).

The Relay owns lxrun's ends (the read ends, the input's write end, a pty master) and closes them
all; the caller's descriptors stay theirs. It does no waiting itself: supervise.wait polls what it
asks for and hands it what is ready. Two endings copy what the task would meet on the caller's
descriptors directly: when a sink's reader left, the Relay closes that source, so the task's next
write breaks as it would have (SIGPIPE, or a hangup on a pty); when the caller's input ends, the
task's stdin pipe is closed (end-of-file).
"""

from __future__ import annotations

import errno
import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.sandbox.output import StreamSink

CHUNK = 65536
# A source that has ended: EIO is how a pty master reads once the task's side has closed.
ENDED = frozenset({errno.EIO})
# A destination that is gone: the task closed its stdin, or its terminal is.
GONE = frozenset({errno.EPIPE, errno.EIO})


class Relay:
    def __init__(self) -> None:
        self._owned: set[int] = set()
        self.outputs: dict[int, StreamSink] = {}  # read end -> sink, until end-of-file
        self._source: int | None = None  # the caller's input, while it is relayed
        self._destination = -1
        self._close_at_end = False
        self._pending = b""

    def add_output(self, read_end: int, sink: StreamSink) -> None:
        """Read `read_end` (now the Relay's) into `sink`."""
        self._owned.add(read_end)
        self.outputs[read_end] = sink

    def add_input(self, source: int, destination: int, close_at_end: bool) -> None:
        """Copy the caller's `source` into `destination` (the Relay's; non-blocking from now on); at the
        source's end close it if `close_at_end` (a pipe: the task reads end-of-file)."""
        self._owned.add(destination)
        os.set_blocking(destination, False)
        self._source, self._destination, self._close_at_end = source, destination, close_at_end

    @property
    def outputs_open(self) -> bool:
        return bool(self.outputs)

    def interest(self) -> dict[int, int]:
        """What to poll now: every open output; its sink's descriptor for errors only (a reader that left
        shows there even while a capped sink writes nothing); the input's source or, with bytes
        pending, its destination."""
        wanted = {sink.target_fd: 0 for sink in self.outputs.values() if sink.target_fd is not None}
        for fd in self.outputs:
            wanted[fd] = select.POLLIN
        if self._source is not None:
            if self._pending:
                wanted[self._destination] = wanted.get(self._destination, 0) | select.POLLOUT
            else:
                wanted[self._source] = select.POLLIN
        return wanted

    def ready(self, fd: int, events: int) -> None:
        if events & (select.POLLERR | select.POLLHUP):
            self._reader_left(fd)
        if fd == self._source:
            self._read_input()
            return
        if fd == self._destination and events & (select.POLLOUT | select.POLLERR) and self._pending:
            self._write_input()
        if fd in self.outputs and events & (select.POLLIN | select.POLLHUP | select.POLLERR):
            self._read_output(fd)

    def task_ended(self) -> None:
        """The task is gone: its input is no longer relayed (what the caller types next is not for it)."""
        self._stop_input()

    def _reader_left(self, target: int) -> None:
        """`target` reports an error or a hangup: the outputs that go there are gone (if it is theirs)."""
        for fd, sink in list(self.outputs.items()):
            if sink.target_fd == target:
                sink.gone = True
                self._end_output(fd)

    def _read_output(self, fd: int) -> None:
        sink = self.outputs[fd]
        try:
            chunk = os.read(fd, CHUNK)
        except OSError as exc:
            if exc.errno not in ENDED:
                raise
            chunk = b""
        if chunk:
            sink.feed(chunk)
            if not sink.gone:
                return
        self._end_output(fd)

    def _end_output(self, fd: int) -> None:
        """At its end-of-file, or once its sink's reader left; then its source closes, so the task's next
        write breaks, as it would have on the caller's descriptor."""
        if self.outputs.pop(fd).gone:
            self._close(fd)
        if fd == self._destination:
            self._stop_input()

    def _read_input(self) -> None:
        assert self._source is not None
        try:
            data = os.read(self._source, CHUNK)
        except OSError as exc:
            if exc.errno not in ENDED:
                raise
            data = b""
        if not data:
            if self._close_at_end:
                self._close(self._destination)
            self._stop_input()
            return
        self._pending = data
        self._write_input()

    def _write_input(self) -> None:
        try:
            written = os.write(self._destination, self._pending)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno not in GONE:
                raise
            self._stop_input()  # the task closed its stdin: what is left is not for anyone
            return
        self._pending = self._pending[written:]

    def _stop_input(self) -> None:
        self._source, self._pending = None, b""

    def _close(self, fd: int) -> None:
        if fd in self._owned:
            self._owned.discard(fd)
            os.close(fd)

    def close(self) -> None:
        for fd in self._owned:
            os.close(fd)
        self._owned.clear()
