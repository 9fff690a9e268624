"""A symlink a task plants in its read-write volume must not steer a later task's volume: task 1 makes
RW/sub a link to the host's /, task 2 asks for RW/sub read-only. Refused when planned, and refused by
the helper itself when the link appears between planning and mounting (what is opened is what is
mounted)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxrun import TaskSpec, Volume
from lxrun.errors import ChildSetupError, SpecError
from lxrun.plan import plan_task
from lxrun.runtime import Runtime
from tests.integration.conftest import sh

pytestmark = pytest.mark.v2


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory tasks share through read-write volumes, on disk as on a runner, writable by any uid (so that
    the attack needs no idmapping)."""
    path = Path(tempfile.mkdtemp(prefix="lxrun-shared-", dir="/var/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def plant(root: Path, shared: Path) -> None:
    """Task 1: RW/sub becomes a link to /, as any task with RW mounted may make it."""
    planted = sh(root, "rm -rf /rw/sub; ln -s / /rw/sub", volumes=(Volume(str(shared), "/rw"),))
    assert planted.exit_code == 0, planted.stderr
    assert (shared / "sub").is_symlink()


def second_task(shared: Path) -> TaskSpec:
    return TaskSpec(
        stack="busybox", argv=["ls", "/x/etc"], volumes=(Volume(str(shared / "sub"), "/x", read_only=True),)
    )


def test_a_planted_symlink_is_refused_at_planning(state_root: Path, shared: Path) -> None:
    plant(state_root, shared)
    runtime = Runtime(state_root)
    with pytest.raises(SpecError, match=r"^volume .*/sub: .*symlink.*give the resolved path /\)$"):
        runtime.run(second_task(shared))


def test_a_symlink_planted_after_planning_is_not_followed(state_root: Path, shared: Path) -> None:
    (shared / "sub").mkdir()
    runtime = Runtime(state_root)
    spec = second_task(shared)
    plan = plan_task(spec, runtime.stacks.resolve(spec.stack))  # RW/sub is still a directory here
    plant(state_root, shared)
    with pytest.raises(ChildSetupError, match=r"^volume .*/sub:/x .*/sub: Too many levels of symbolic links"):
        runtime.backend("native").run(plan)
