"""Waiting for a task: its pid 1's pidfd and the capture pipes, in one poll loop.

The loop ends when pid 1 has exited and every capture pipe has reached end-of-file (which follows
at once: the kernel kills the rest of the pid namespace when its pid 1 exits).
"""

from __future__ import annotations

import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.helper import SandboxProcess

CHUNK = 65536


def wait(proc: SandboxProcess, captures: dict[str, int]) -> tuple[int, dict[str, bytes]]:
    """The task's wait status and what each capture pipe delivered."""
    poller = select.poll()
    poller.register(proc.pidfd, select.POLLIN)
    streams = {fd: stream for stream, fd in captures.items()}
    buffers = {stream: bytearray() for stream in captures}
    for fd in streams:
        poller.register(fd, select.POLLIN)
    exited = False
    while not exited or streams:
        for fd, _events in poller.poll():
            if fd == proc.pidfd:
                exited = True
                poller.unregister(fd)
                continue
            chunk = os.read(fd, CHUNK)
            if chunk:
                buffers[streams[fd]] += chunk
            else:
                poller.unregister(fd)
                del streams[fd]
    return proc.reap(), {stream: bytes(data) for stream, data in buffers.items()}
