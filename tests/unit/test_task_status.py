"""The reported wait status: init's record where the kernel's word on pid 1 confirms it, else the kernel's."""

from __future__ import annotations

import signal
import sys

import pytest

from lxrun.sandbox.task_status import task_status


def record(status: int) -> bytes:
    return status.to_bytes(4, sys.byteorder, signed=True)


def exited(code: int) -> int:
    return code << 8


KILLED = signal.SIGKILL  # a wait status: killed by SIGKILL


@pytest.mark.parametrize(
    ("written", "pid1", "reported"),
    [
        (record(exited(0)), exited(0), exited(0)),
        (record(exited(137)), exited(137), exited(137)),  # exit 137 ...
        (record(KILLED), exited(137), KILLED),  # ... is not death by SIGKILL
        (record(signal.SIGSEGV | 0x80), exited(128 + signal.SIGSEGV), signal.SIGSEGV | 0x80),  # core dumped
        (record(exited(42)), exited(0), exited(0)),  # the reporter's forgery
        (record(KILLED), exited(0), exited(0)),
        (record(exited(0)), exited(137), exited(137)),
        (record(exited(137)) + record(exited(0)), exited(0), exited(0)),  # a second writer
        (record(exited(0)) + record(exited(137)), exited(137), exited(137)),
        (record(exited(0) | 1 << 16), exited(0), exited(0)),  # no wait status
        (record(-1), exited(255), exited(255)),
        (b"", exited(3), exited(3)),  # init ended without writing one
        (b"\0\0", exited(0), exited(0)),
        (b"", KILLED, KILLED),  # pid 1 itself killed: lxrun kill, a timeout, the OOM killer
        (record(exited(0)), KILLED, KILLED),
        (record(signal.SIGTERM), KILLED, KILLED),
    ],
)
def test_the_record_counts_where_the_kernel_agrees(written: bytes, pid1: int, reported: int) -> None:
    assert task_status(written, pid1) == reported
