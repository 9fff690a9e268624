"""Waiting for a task: its pid 1's pidfd, the descriptors its Relay moves bytes through and the
timeout, in one poll loop.

At the timeout the task gets SIGTERM (through pid 1); `stop_timeout` seconds later every process in
its cgroup gets SIGKILL. The loop ends when pid 1 has exited and every output has reached end-of-file
(which follows at once: the kernel kills the rest of the pid namespace when its pid 1 exits).
"""

from __future__ import annotations

import select
import time

from lxrun import signals as signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from lxrun.sandbox.relay import Relay

    class SandboxProcess(Protocol):
        """What is waited for: the helper's SandboxProcess, or the lxc backend's monitor."""

        @property
        def pidfd(self) -> int: ...

        def send_signal(self, sig: int) -> None: ...

        def reap(self) -> int: ...


def wait(
    proc: SandboxProcess,
    relay: Relay,
    started: float,
    timeout: float | None = None,
    stop_timeout: float = 10.0,
    kill_all: Callable[[], None] | None = None,
) -> tuple[int, bool]:
    """Relay the task's bytes until it ends; returns its wait status and whether it timed out."""
    exited = timed_out = False
    term_at = started + timeout if timeout is not None else None
    kill_at: float | None = None
    while not exited or relay.outputs_open:
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
        # What to poll changes as streams end and input waits to be written: a poll object a round.
        poller = select.poll()
        if not exited:
            poller.register(proc.pidfd, select.POLLIN)
        for fd, events in relay.interest().items():
            poller.register(fd, events)
        for fd, events in poller.poll(wait_ms):
            if fd == proc.pidfd and not exited:
                exited = True
                relay.task_ended()
            elif fd != proc.pidfd:
                relay.ready(fd, events)
    return proc.reap(), timed_out
