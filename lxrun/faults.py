"""Fault injection for the crash tests: LXRUN_FAULT=<step> makes a runner SIGKILL itself at that step.

Only tests set it; unset, a check costs one comparison. The steps, in the order a task passes them:
record-written (the record's content, before its name), record, name, kept, stdio, uid-range, network,
cgroup, spawned, running, collected, released.
"""

from __future__ import annotations

import os

from lxrun import signals as signal

FAULT = os.environ.get("LXRUN_FAULT")


def point(step: str) -> None:
    if step == FAULT:
        os.kill(os.getpid(), signal.SIGKILL)
