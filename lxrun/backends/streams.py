"""A task's output streams for backends that relay them: captured or forwarded, capped at output_limit.

An OutputSink takes a stream's bytes as they arrive. Without a limit it forwards them to the target
descriptor or collects them. With a limit it keeps the first half of the limit (forwarded live) and the
last half (held back until the end), drops the middle and puts a marker where it was cut, as BenchExec
does: the head shows how the task started, the tail how it ended. The task itself is never stopped.
"""

from __future__ import annotations

import os

from lxrun.spec import CAPTURE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.spec import TaskSpec


OPENING = 256


def cut_marker(dropped: int) -> bytes:
    return f"\n[lxrun: output limit reached, {dropped} bytes cut here]\n".encode()


class OutputSink:
    def __init__(self, target: int | str, limit: int | None) -> None:
        self.target = target
        self.limit = limit
        self.truncated = False
        self._captured = bytearray()
        self._head_size = 0
        self._tail = bytearray()
        self._dropped = 0
        self.opening = b""  # the stream's first bytes, kept even when forwarded (they may say why it failed)

    @property
    def captures(self) -> bool:
        return self.target == CAPTURE

    def write(self, chunk: bytes) -> None:
        if len(self.opening) < OPENING:
            self.opening += chunk[: OPENING - len(self.opening)]
        if self.limit is None:
            self._out(chunk)
            return
        room = self.limit // 2 - self._head_size
        if room > 0:
            self._out(chunk[:room])
            self._head_size += min(room, len(chunk))
            chunk = chunk[room:]
        if not chunk:
            return
        self._tail += chunk
        excess = len(self._tail) - (self.limit - self.limit // 2)
        if excess > 0:
            del self._tail[:excess]
            self._dropped += excess
            self.truncated = True

    def _out(self, data: bytes) -> None:
        if self.captures:
            self._captured += data
            return
        view = memoryview(data)
        while view:
            view = view[os.write(int(self.target), view) :]

    def finish(self) -> bytes | None:
        """Write out what was held back; the captured bytes (None when the stream went to a descriptor)."""
        if self.truncated:
            self._out(cut_marker(self._dropped))
        self._out(bytes(self._tail))
        self._tail.clear()
        return bytes(self._captured) if self.captures else None


def needs_relay(spec: TaskSpec, target: int | str) -> bool:
    """A stream goes through a pipe of ours when it is captured or must be capped."""
    return target == CAPTURE or spec.output_limit is not None
