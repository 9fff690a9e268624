"""Waiting for a task: its pid 1's pidfd, the pipes lxrun reads and the timeout, in one poll loop.

At the timeout the task gets SIGTERM (through pid 1); `stop_timeout` seconds later every process in
its cgroup gets SIGKILL. The loop ends when pid 1 has exited and every pipe has reached end-of-file
(which follows at once: the kernel kills the rest of the pid namespace when its pid 1 exits).
"""

from __future__ import annotations

import os
import select
import signal
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from lxrun.sandbox.output import StreamSink

    class SandboxProcess(Protocol):
        """What is waited for: the helper's SandboxProcess, or the lxc backend's monitor."""

        @property
        def pidfd(self) -> int: ...

        def send_signal(self, sig: int) -> None: ...

        def reap(self) -> int: ...


CHUNK = 65536


def wait(
    proc: SandboxProcess,
    sinks: dict[int, StreamSink],
    started: float,
    timeout: float | None = None,
    stop_timeout: float = 10.0,
    kill_all: Callable[[], None] | None = None,
) -> tuple[int, bool]:
    """Drain `sinks` (read fd -> sink) until the task ends; returns its wait status and whether it timed out."""
    poller = select.poll()
    poller.register(proc.pidfd, select.POLLIN)
    for fd in sinks:
        poller.register(fd, select.POLLIN)
    open_pipes = set(sinks)
    exited = timed_out = False
    term_at = started + timeout if timeout is not None else None
    kill_at: float | None = None
    while not exited or open_pipes:
        now = time.monotonic()
        if not exited and term_at is not None and now >= term_at:
            timed_out, term_at, kill_at = True, None, now + stop_timeout
            proc.send_signal(signal.SIGTERM)
        if not exited and kill_at is not None and now >= kill_at:
            kill_at = None
            if kill_all is not None:
                kill_all()
            proc.send_signal(signal.SIGKILL)
        next_event = term_at if term_at is not None else kill_at
        wait_ms = None if exited or next_event is None else max(0, int((next_event - now) * 1000) + 1)
        for fd, _events in poller.poll(wait_ms):
            if fd == proc.pidfd:
                exited = True
                poller.unregister(fd)
                continue
            chunk = os.read(fd, CHUNK)
            if chunk:
                sinks[fd].feed(chunk)
            else:
                poller.unregister(fd)
                open_pipes.discard(fd)
    return proc.reap(), timed_out
