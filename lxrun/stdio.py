"""The task's standard streams: the descriptors the sandbox gets, and the pipes we read to capture output.

TaskStdio owns every descriptor it opens (/dev/null for stdin, capture pipes) and closes them all.
Descriptors the caller passed in stay the caller's.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

    from lxrun.spec import TaskSpec

STREAMS = ("stdout", "stderr")


class TaskStdio:
    def __init__(self, spec: TaskSpec) -> None:
        self._owned: list[int] = []
        self._child_ends: list[int] = []
        self.captures: dict[str, int] = {}
        try:
            if spec.stdin is None:
                self.stdin_fd = self._own(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
                self._child_ends.append(self.stdin_fd)
            else:
                self.stdin_fd = spec.stdin
            self.stdout_fd = self._output("stdout", spec.stdout)
            self.stderr_fd = self._output("stderr", spec.stderr)
        except BaseException:
            self.close()
            raise

    def _own(self, fd: int) -> int:
        self._owned.append(fd)
        return fd

    def _output(self, stream: str, target: int | str) -> int:
        if isinstance(target, int):
            return target
        read_end, write_end = os.pipe()
        self._own(read_end)
        self._own(write_end)
        self._child_ends.append(write_end)
        self.captures[stream] = read_end
        return write_end

    def close_child_ends(self) -> None:
        """After the spawn: our copies of the child's ends must go, or the capture pipes never end."""
        for fd in self._child_ends:
            self._close(fd)
        self._child_ends.clear()

    def _close(self, fd: int) -> None:
        if fd in self._owned:
            self._owned.remove(fd)
            os.close(fd)

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
