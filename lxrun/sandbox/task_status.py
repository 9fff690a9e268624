"""The task's wait status, from what the kernel says of pid 1 and what lxrun-init wrote on its status pipe.

lxrun-init writes the task's exact wait status (4 bytes) and then exits with the docker-style code
of it: N for exit N, 128+S for signal S. That code alone can't tell `exit 137` from death by SIGKILL,
so the record is needed; but a process that reaches the pipe (a task given CAP_SYS_PTRACE over pid 1)
could write one. So the record counts only where it agrees with the kernel: pid 1 killed (lxrun kill,
a timeout's SIGKILL, the OOM killer, cgroup.kill) is reported as that, whatever the record says; a
record that is not exactly one wait status whose docker-style code is pid 1's exit code is ignored for
that code. What a forger can still do is what the task could do anyway: exit with a code of its choice.
"""

from __future__ import annotations

import os
import sys

RECORD_SIZE = 4  # an int, as init writes it (native/init.c)
MAX_SIGNAL = 64


def _docker_code(status: int) -> int | None:
    """The code init exits with for a task that ended with `status`; None for what is no wait status."""
    if status & ~0xFFFF:
        return None
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) <= MAX_SIGNAL:
        return 128 + os.WTERMSIG(status)
    return None


def task_status(record: bytes, pid1_status: int) -> int:
    """The wait status to report for a task whose pid 1 ended with `pid1_status`, having written `record`
    (everything read from its status pipe; a read of more than RECORD_SIZE bytes shows a second writer)."""
    if not os.WIFEXITED(pid1_status):
        return pid1_status
    code = os.WEXITSTATUS(pid1_status)
    if len(record) == RECORD_SIZE:
        claimed = int.from_bytes(record, sys.byteorder, signed=True)
        if _docker_code(claimed) == code:
            return claimed
    return code << 8
