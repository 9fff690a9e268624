"""A stand-in for the native helper, so the backend's and the composer's logic run without root.

It records every SpawnRequest and runs its argv on the host, unsandboxed, on the request's stdio
(posix_spawn), or raises the error it was given, as the helper raises a child's failure record.
What it returns is a real SandboxProcess: a pidfd, and a status pipe with nothing in it, so the
wait status is the process's own."""

from __future__ import annotations

import os

from lxrun.errors import LxrunError
from lxrun.sandbox.helper import SandboxProcess, SpawnRequest


class FakeHelper:
    def __init__(self, fail: LxrunError | None = None) -> None:
        self.requests: list[SpawnRequest] = []
        self.fail = fail

    def __call__(self, request: SpawnRequest) -> SandboxProcess:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        fds = (request.stdin_fd, request.stdout_fd, request.stderr_fd)
        stdio = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
        # Unblocked signals, as lxrun-init gives the task (the composer blocks some while it spawns).
        pid = os.posix_spawnp(request.argv[0], list(request.argv), dict(request.env), file_actions=stdio, setsigmask=())
        status_read, status_write = os.pipe2(os.O_CLOEXEC)
        os.close(status_write)
        return SandboxProcess(pid, os.pidfd_open(pid), status_read)

    @property
    def last(self) -> SpawnRequest:
        return self.requests[-1]
