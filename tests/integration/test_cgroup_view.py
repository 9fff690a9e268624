"""A task sees its own cgroup, read-only, at /sys/fs/cgroup (as under docker), and nothing above it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.spec import Limits, Security

from .conftest import sh

pytestmark = pytest.mark.v2

LIMIT = 256 << 20
SCRIPT = """
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then file=/sys/fs/cgroup/memory.max; else
  file=/sys/fs/cgroup/memory/memory.limit_in_bytes; fi
echo "limit $(cat $file)"
echo 1 > $file 2>/dev/null && echo "wrote $file"
mkdir /sys/fs/cgroup/x 2>/dev/null && echo "made a dir"
find /sys/fs/cgroup -mindepth 1 -type d | sed 's/^/dir /'
cut -d: -f3 /proc/self/cgroup | sed 's/^/in /'
"""


@pytest.mark.parametrize("userns", ["private", "host"])
def test_the_task_sees_its_own_memory_limit_read_only_and_nothing_above(state_root: Path, userns: str) -> None:
    security = Security(userns="host") if userns == "host" else Security()
    result = sh(state_root, SCRIPT, limits=Limits(memory=LIMIT), security=security)
    lines = result.stdout.decode().splitlines()
    assert f"limit {LIMIT}" in lines, result.stdout
    assert not [line for line in lines if line.startswith(("wrote", "made"))], lines
    # Each mount's root is the task's cgroup: the only directories are v1's hierarchies (no child cgroup,
    # no other task's, no lxrun/ parent), and the task is at the root of each.
    dirs = [line.removeprefix("dir /sys/fs/cgroup/") for line in lines if line.startswith("dir ")]
    assert all("/" not in d and "lxrun" not in d for d in dirs), dirs
    assert {line for line in lines if line.startswith("in ")} == {"in /"}, lines
