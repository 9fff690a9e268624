"""Where a task's stdout or stderr goes when lxrun reads it: a descriptor (written as it arrives) or
memory, with an optional cap that keeps the head and the tail and drops the middle, as BenchExec
does: the task keeps running, the caller sees how it began and how it ended, and where the cut was.
When the descriptor's reader leaves (EPIPE, or EIO from a hung-up terminal), the sink is `gone`:
whoever feeds it closes its source, so the task meets the broken pipe itself, as it would writing
to the descriptor directly.
"""

from __future__ import annotations

import errno
import os

TRUNCATION_MARK = b"\n[lxrun: output truncated, %d bytes dropped here]\n"


class StreamSink:
    def __init__(self, target_fd: int | None, limit: int | None) -> None:
        self.target_fd = target_fd  # None: keep in memory
        self.head_room = limit - limit // 2 if limit is not None else None
        self.tail_room = limit // 2 if limit is not None else 0
        self.kept = bytearray()  # in memory: everything kept so far of the head
        self.tail = bytearray()
        self.dropped = 0
        self.gone = False  # the target's reader left: nothing more is written

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def feed(self, chunk: bytes) -> None:
        if self.head_room is None:
            self._emit(chunk)
            return
        head, rest = chunk[: self.head_room], chunk[self.head_room :]
        if head:
            self.head_room -= len(head)
            self._emit(head)
        if rest:
            self.tail += rest
            excess = len(self.tail) - self.tail_room
            if excess > 0:
                self.dropped += excess
                del self.tail[:excess]

    def finish(self) -> bytes | None:
        """Flush the tail (after the mark, if anything was dropped); the captured bytes, if in memory."""
        if self.dropped:
            self._emit(TRUNCATION_MARK % self.dropped)
        self._emit(bytes(self.tail))
        self.tail.clear()
        return bytes(self.kept) if self.target_fd is None else None

    def _emit(self, data: bytes) -> None:
        if self.target_fd is None:
            self.kept += data
            return
        view = memoryview(data)
        while view and not self.gone:
            try:
                view = view[os.write(self.target_fd, view) :]
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EIO):  # EIO: a terminal that hung up
                    self.gone = True
                elif exc.errno != errno.EINTR:
                    raise
