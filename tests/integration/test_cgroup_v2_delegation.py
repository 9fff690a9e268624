"""On a pure cgroup-v2 host, started as a systemd service with Delegate=yes would be (make test-v2):
lxrun empties its delegated cgroup into a leaf, enables only the controllers it uses, and stays
inside the subtree it was given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxrun.cgroups import detect
from lxrun.cgroups.v2 import RUNNER_LEAF, V2Manager
from lxrun.spec import Limits

from .conftest import sh

pytestmark = pytest.mark.v2only


@pytest.fixture
def manager() -> V2Manager:
    found = detect()
    assert isinstance(found, V2Manager), "make test-v2 runs this on a pure cgroup-v2 host"
    return found


def test_the_delegated_cgroup_is_emptied_into_a_leaf(state_root: Path, manager: V2Manager) -> None:
    sh(state_root, "true", limits=Limits(memory=64 << 20, pids=10, cpus=1, cpuset_cpus="0"))
    given = Path(f"{manager.mount}{manager.own}")
    assert (given / "cgroup.procs").read_text() == "", "no-internal-processes: the given cgroup must be empty"
    assert Path("/proc/self/cgroup").read_text().strip().endswith(f"/{RUNNER_LEAF}")
    assert str(os.getpid()) in (given / RUNNER_LEAF / "cgroup.procs").read_text().split()


def test_only_the_controllers_tasks_use_are_enabled(state_root: Path, manager: V2Manager) -> None:
    sh(state_root, "true")
    given = Path(f"{manager.mount}{manager.own}")
    wanted = {"memory", "pids", "cpu", "cpuset"}
    assert set((given / "cgroup.subtree_control").read_text().split()) == wanted
    assert set((given / "lxrun" / "cgroup.subtree_control").read_text().split()) == wanted
    available = set((given / "cgroup.controllers").read_text().split())
    assert available - wanted, "the guest offers more controllers (io, hugetlb, ...) that must stay off"


def test_nothing_is_written_outside_the_given_subtree(state_root: Path, manager: V2Manager) -> None:
    parent = Path(f"{manager.mount}{manager.own}").parent
    before = sorted(p.name for p in parent.iterdir())
    subtree_control = (parent / "cgroup.subtree_control").read_text()
    sh(state_root, "true", limits=Limits(memory=32 << 20))
    assert sorted(p.name for p in parent.iterdir()) == before
    assert (parent / "cgroup.subtree_control").read_text() == subtree_control
