"""What a task sees of its own environment, with docker as the reference: its limits at /sys/fs/cgroup
(runtimes size themselves from them), and /dev a tmpfs of its own with POSIX message queues."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.spec import Limits

from .conftest import differs, sh

LIMIT = 256 << 20
# cgroup v2's file, else v1's: the task's own cgroup is the root of what it sees.
MEMORY_LIMIT = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
NO_LIMIT_FILE = "LXC mounts no cgroup tree in the task here: /sys/fs/cgroup is empty"


def test_the_task_reads_its_memory_limit(backend: str, state_root: Path, request: pytest.FixtureRequest) -> None:
    differs(request, backend, {"lxc": NO_LIMIT_FILE})
    result = sh(backend, state_root, MEMORY_LIMIT, limits=Limits(memory=LIMIT))
    assert (result.exit_code, result.stdout) == (0, f"{LIMIT}\n".encode()), result.stderr


def test_the_task_cant_raise_its_limit(backend: str, state_root: Path, request: pytest.FixtureRequest) -> None:
    differs(request, backend, {"lxc": NO_LIMIT_FILE})
    raise_it = (
        "f=/sys/fs/cgroup/memory.max; [ -e $f ] || f=/sys/fs/cgroup/memory/memory.limit_in_bytes;"
        " [ -e $f ] || exit 3; echo 1073741824 > $f 2>/dev/null && echo raised || echo refused; cat $f"
    )
    result = sh(backend, state_root, raise_it, limits=Limits(memory=LIMIT))
    assert (result.exit_code, result.stdout) == (0, f"refused\n{LIMIT}\n".encode()), result.stderr


def test_dev_is_a_tmpfs_of_the_tasks_own_with_mqueue(
    backend: str, state_root: Path, request: pytest.FixtureRequest
) -> None:
    differs(request, backend, {"lxc": "LXC's /dev has no /dev/mqueue"})
    script = (
        "stat -f -c %T /dev; mkfifo /dev/fifo && echo fifo; grep -c ' /dev/mqueue mqueue ' /proc/self/mounts;"
        " ls /dev/null /dev/zero /dev/urandom /dev/tty"
    )
    result = sh(backend, state_root, script)
    assert result.stdout == b"tmpfs\nfifo\n1\n/dev/null\n/dev/tty\n/dev/urandom\n/dev/zero\n", result.stderr
