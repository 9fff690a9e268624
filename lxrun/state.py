"""Task records, run/<task-id>.json: written before a task acquires anything, removed after it let go.

A record left behind means a runner died mid-task; it names what that task held.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from lxrun.errors import SetupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.layout import Layout
    from lxrun.plan import TaskPlan


@contextlib.contextmanager
def task_record(layout: Layout, plan: TaskPlan, backend: str) -> Iterator[str]:
    """One file, created exclusively (a task id is never reused while its record exists)."""
    path = layout.task(plan.task_id)
    record = {
        "id": plan.task_id,
        "name": plan.spec.name,
        "stack": plan.stack.ref,
        "backend": backend,
        "runner_pid": os.getpid(),
        "created": time.time(),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise SetupError("task record", "task id already in use", path=path) from None
    try:
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(record))
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
