"""The task's standard streams: the descriptors the sandbox gets, and the pipes lxrun reads.

stdout/stderr go straight to the caller's descriptor when nothing needs to see them; through a pipe
into a StreamSink when they are captured or capped by an output limit. TaskStdio owns every
descriptor it opens (/dev/null for stdin, the pipes) and closes them all; the caller's stay theirs.
"""

from __future__ import annotations

import os

from lxrun.errors import SetupError
from lxrun.sandbox.output import StreamSink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

    from lxrun.spec import TaskSpec


class TaskStdio:
    def __init__(self, spec: TaskSpec) -> None:
        self._owned: list[int] = []
        self._child_ends: list[int] = []
        self.sinks: dict[int, StreamSink] = {}  # read end -> sink
        self.streams: dict[str, StreamSink] = {}  # "stdout"/"stderr" -> sink
        try:
            if spec.stdin is None:
                self.stdin_fd = self._own(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
                self._child_ends.append(self.stdin_fd)
            else:
                self.stdin_fd = spec.stdin
            self.stdout_fd = self._output("stdout", spec.stdout, spec.output_limit)
            self.stderr_fd = self._output("stderr", spec.stderr, spec.output_limit)
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError):
                raise SetupError.from_os_error("task stdio", exc) from exc
            raise

    def _own(self, fd: int) -> int:
        self._owned.append(fd)
        return fd

    def _output(self, stream: str, target: int | str, limit: int | None) -> int:
        target_fd = target if isinstance(target, int) else None
        if target_fd is not None and limit is None:
            return target_fd
        read_end, write_end = os.pipe()
        self._own(read_end)
        self._own(write_end)
        self._child_ends.append(write_end)
        self.sinks[read_end] = self.streams[stream] = StreamSink(target_fd, limit)
        return write_end

    def close_child_ends(self) -> None:
        """After the spawn: our copies of the child's ends must go, or the pipes never end."""
        for fd in self._child_ends:
            self._owned.remove(fd)
            os.close(fd)
        self._child_ends.clear()

    def finish(self) -> tuple[dict[str, bytes | None], bool]:
        """Flush every sink: the captured bytes per stream, and whether any output was cut."""
        captured = {stream: sink.finish() for stream, sink in self.streams.items()}
        return captured, any(sink.truncated for sink in self.streams.values())

    def close(self) -> None:
        for fd in self._owned:
            os.close(fd)
        self._owned.clear()

    def __enter__(self) -> TaskStdio:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
