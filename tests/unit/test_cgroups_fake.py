"""Controller logic of the v1 and v2 managers on a fake tree in tmp_path.

These prove which files get which values and how usage is read; they prove nothing about the
kernel (tests/integration/test_limits.py and the v2 guest run do that)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.cgroups.discover import cgroup_mounts, own_cgroups
from lxrun.cgroups.limits import shares_to_weight
from lxrun.cgroups.null import NullManager
from lxrun.cgroups.v1 import V1Manager
from lxrun.cgroups.v2 import V2Manager
from lxrun.errors import HostUnsupported, SpecError
from lxrun.spec import Limits

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""
PROC_SELF_CGROUP = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/user.slice\n"


def test_discovery_parses_mountinfo_and_own_cgroups() -> None:
    v1, v2 = cgroup_mounts(MOUNTINFO)
    assert v1 == {
        "cpu": "/sys/fs/cgroup/cpu",
        "memory": "/sys/fs/cgroup/memory",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
    }
    assert v2 == "/sys/fs/cgroup/unified"
    own, own_v2 = own_cgroups(PROC_SELF_CGROUP)
    assert own == {"memory": "/process_api/abc", "cpu": "/", "cpuacct": "/"}
    assert own_v2 == "/user.slice"


def v1_tree(tmp_path: Path) -> V1Manager:
    controllers = ("memory", "cpuacct", "pids", "freezer", "cpu", "cpuset")
    for controller in controllers:
        (tmp_path / controller / "own").mkdir(parents=True)
    (tmp_path / "cpuset/own/cpuset.cpus").write_text("0-3\n")
    (tmp_path / "cpuset/own/cpuset.mems").write_text("0\n")
    return V1Manager({c: str(tmp_path / c) for c in controllers}, {c: "/own" for c in controllers})


def test_v1_task_without_limits_joins_only_the_always_hierarchies(tmp_path: Path) -> None:
    task = v1_tree(tmp_path).create("t1", Limits())
    assert sorted(task.dirs) == ["cpuacct", "freezer", "memory", "pids"]
    # cpu and cpuset: the shared leaf (a runtime reading its limits needs them mounted), not a cgroup of its own
    shared = [f"{tmp_path}/{c}/own/lxrun/shared/tasks" for c in ("cpu", "cpuset")]
    assert task.join_files() == [f"{tmp_path}/{c}/own/lxrun/t1/tasks" for c in task.dirs] + shared
    assert (tmp_path / "cpuset/own/lxrun/shared/cpuset.cpus").read_text() == "0-3"
    assert list((tmp_path / "memory/own/lxrun/t1").iterdir()) == []  # nothing written without limits
    view = task.view()
    assert not view.unified and sorted(view.hierarchies) == ["cpu", "cpuacct", "cpuset", "freezer", "memory", "pids"]
    assert view.hierarchies["memory"] == "memory" and view.links == {}
    task.remove()
    assert (tmp_path / "cpu/own/lxrun/shared").is_dir()  # not the task's to remove


def test_v1_task_with_a_cpu_limit_owns_its_cpu_cgroup_and_co_mounted_hierarchies_are_linked(tmp_path: Path) -> None:
    manager = v1_tree(tmp_path)
    manager.mounts["cpuacct"] = manager.mounts["cpu"] = str(tmp_path / "cpu,cpuacct")
    (tmp_path / "cpu,cpuacct/own").mkdir(parents=True)
    task = manager.create("t1", Limits(cpus=1.0))
    assert "cpu" not in task.shared and "cpuset" in task.shared
    view = task.view()
    assert view.hierarchies["cpu,cpuacct"] == "cpu,cpuacct"
    assert view.links == {"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct"}


def test_v1_idle_shared_leaves_go_with_their_parents(tmp_path: Path) -> None:
    manager = v1_tree(tmp_path)
    manager.create("t1", Limits()).remove()
    assert (tmp_path / "cpu/own/lxrun/shared").is_dir()
    # cpuset's are left: on a fake tree the files written into them are real, so the dirs are not empty
    removed = [f"{tmp_path}/{c}/own/lxrun" for c in manager.mounts if c != "cpuset"]
    assert sorted(manager.remove_idle_parents()) == sorted(removed)


def test_v1_limits_land_in_their_files(tmp_path: Path) -> None:
    limits = Limits(memory=64 << 20, cpus=0.5, cpu_shares=512, pids=100, cpuset_cpus="1-2")
    task = v1_tree(tmp_path).create("t1", limits)
    read = lambda rel: (tmp_path / rel).read_text()  # noqa: E731
    assert read("memory/own/lxrun/t1/memory.limit_in_bytes") == str(64 << 20)
    assert read("memory/own/lxrun/t1/memory.swappiness") == "0"  # no memsw file in a fake tree
    assert read("cpu/own/lxrun/t1/cpu.cfs_period_us") == "100000"
    assert read("cpu/own/lxrun/t1/cpu.cfs_quota_us") == "50000"
    assert read("cpu/own/lxrun/t1/cpu.shares") == "512"
    assert read("pids/own/lxrun/t1/pids.max") == "100"
    assert read("cpuset/own/lxrun/t1/cpuset.cpus") == "1,2"
    assert read("cpuset/own/lxrun/t1/cpuset.mems") == "0"
    assert read("cpuset/own/lxrun/cpuset.cpus") == "0-3"  # the lxrun parent inherited its parent's
    assert sorted(task.dirs) == ["cpu", "cpuacct", "cpuset", "freezer", "memory", "pids"]


def test_v1_usage_is_read_from_the_kernels_files(tmp_path: Path) -> None:
    task = v1_tree(tmp_path).create("t1", Limits())
    memory, cpuacct, pids = (Path(task.dirs[c]) for c in ("memory", "cpuacct", "pids"))
    (memory / "memory.max_usage_in_bytes").write_text("1048576\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (cpuacct / "cpuacct.usage_user").write_text("1500000000\n")
    (cpuacct / "cpuacct.usage_sys").write_text("250000000\n")
    (pids / "pids.peak").write_text("7\n")
    usage = task.usage()
    assert (usage.oom_killed, usage.peak_memory, usage.pids_peak) == (True, 1 << 20, 7)
    assert (usage.cpu_user, usage.cpu_system) == (1.5, 0.25)


def test_v1_missing_files_mean_unknown_not_zero(tmp_path: Path) -> None:
    usage = v1_tree(tmp_path).create("t1", Limits()).usage()
    assert (usage.oom_killed, usage.peak_memory, usage.cpu_user, usage.pids_peak) == (False, None, None, None)


def test_v1_cgroup_parent_must_exist_and_nothing_is_created(tmp_path: Path) -> None:
    manager = v1_tree(tmp_path)
    with pytest.raises(SpecError, match=r"^cgroup_parent /nope: does not exist in the memory hierarchy"):
        manager.create("t1", Limits(), parent="/nope")
    assert not any(tmp_path.rglob("t1"))


def test_v1_failure_midway_removes_what_was_made(tmp_path: Path) -> None:
    manager = v1_tree(tmp_path)
    (tmp_path / "pids/own/lxrun").mkdir()
    (tmp_path / "pids/own/lxrun/t1").mkdir()  # a clash in the third hierarchy
    with pytest.raises(Exception, match="already exists"):
        manager.create("t1", Limits())
    assert not (tmp_path / "memory/own/lxrun/t1").exists()
    assert not (tmp_path / "cpuacct/own/lxrun/t1").exists()


def v2_tree(tmp_path: Path) -> V2Manager:
    for directory in ("svc", "svc/lxrun"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
        (tmp_path / directory / "cgroup.subtree_control").write_text("")
        (tmp_path / directory / "cgroup.procs").write_text("")
    return V2Manager(str(tmp_path), "/svc")


def test_v2_enables_only_the_controllers_it_uses_top_down(tmp_path: Path) -> None:
    v2_tree(tmp_path).create("t1", Limits())
    assert (tmp_path / "svc/cgroup.subtree_control").read_text() == "+memory +pids +cpu +cpuset"
    assert (tmp_path / "svc/lxrun/cgroup.subtree_control").read_text() == "+memory +pids +cpu +cpuset"


def test_v2_limits_land_in_their_files(tmp_path: Path) -> None:
    limits = Limits(memory=64 << 20, cpus=1.5, cpu_shares=2048, pids=50, cpuset_cpus="0")
    v2_tree(tmp_path).create("t1", limits)
    task = tmp_path / "svc/lxrun/t1"
    assert (task / "memory.max").read_text() == str(64 << 20)
    assert (task / "cpu.max").read_text() == "150000 100000"
    assert (task / "cpu.weight").read_text() == str(shares_to_weight(2048))
    assert (task / "pids.max").read_text() == "50"
    assert (task / "cpuset.cpus").read_text() == "0"


def test_v2_usage(tmp_path: Path) -> None:
    task = v2_tree(tmp_path).create("t1", Limits())
    path = Path(task.path)
    (path / "memory.peak").write_text("2097152\n")
    (path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
    (path / "cpu.stat").write_text("usage_usec 900000\nuser_usec 600000\nsystem_usec 300000\n")
    (path / "pids.peak").write_text("4\n")
    usage = task.usage()
    assert (usage.oom_killed, usage.peak_memory, usage.cpu_user, usage.cpu_system, usage.pids_peak) == (
        True,
        2 << 20,
        0.6,
        0.3,
        4,
    )


def test_v2_a_limit_whose_controller_is_not_delegated_is_refused(tmp_path: Path) -> None:
    manager = v2_tree(tmp_path)
    (tmp_path / "svc/lxrun/cgroup.controllers").write_text("cpu\n")
    with pytest.raises(SpecError, match="the memory controller is not available"):
        manager.create("t1", Limits(memory=64 << 20))
    assert not (tmp_path / "svc/lxrun/t1").exists()


def test_shares_to_weight_matches_runc() -> None:
    assert (shares_to_weight(2), shares_to_weight(1024), shares_to_weight(262144)) == (1, 39, 10000)


def test_null_manager_refuses_limits_but_runs_without() -> None:
    manager = NullManager()
    assert manager.create("t1", Limits()).join_files() == []
    with pytest.raises(HostUnsupported, match="limits can't be set"):
        manager.create("t1", Limits(pids=5))


def test_own_cgroup_is_where_the_detected_process_is(tmp_path: Path) -> None:
    """`lxrun ps` reads a task's usage from the cgroup its pid 1 is in, on any backend."""
    v1 = v1_tree(tmp_path).own_cgroup()
    assert v1.dirs == {c: f"{tmp_path}/{c}/own" for c in v1.dirs} and "memory" in v1.dirs
    assert v2_tree(tmp_path).own_cgroup().path == f"{tmp_path}/svc"
    assert NullManager().own_cgroup() is None


def test_v1_with_swap_accounting_caps_memory_and_swap_together(tmp_path: Path) -> None:
    manager = v1_tree(tmp_path)
    (tmp_path / "memory/memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")  # the hierarchy's root
    task = Path(manager.create("t1", Limits(memory=64 << 20)).dirs["memory"])
    assert (task / "memory.memsw.limit_in_bytes").read_text() == str(64 << 20)
    assert not (task / "memory.swappiness").exists()


def test_v1_a_limit_without_its_hierarchy_names_the_option(tmp_path: Path) -> None:
    (tmp_path / "memory/own").mkdir(parents=True)
    manager = V1Manager({"memory": str(tmp_path / "memory")}, {"memory": "/own"})
    with pytest.raises(SpecError, match=r"^cpus/cpu_shares: needs the cpu cgroup controller"):
        manager.create("t1", Limits(cpus=1))
    assert not (tmp_path / "memory/own/lxrun/t1").exists()


def test_v1_every_task_shares_the_devices_leaf_that_holds_the_minimal_list(tmp_path: Path) -> None:
    manager = v1_tree(tmp_path)
    (tmp_path / "devices/own").mkdir(parents=True)
    manager.mounts["devices"], manager.own["devices"] = str(tmp_path / "devices"), "/own"
    first, second = manager.create("t1", Limits()), manager.create("t2", Limits(memory=64 << 20))
    leaf = tmp_path / "devices/own/lxrun/shared"
    assert "devices" not in first.dirs and first.shared["devices"] == second.shared["devices"] == str(leaf)
    assert f"{leaf}/tasks" in first.join_files() and "devices" in first.view().hierarchies
    # On a fake tree each write replaces the file: the deny-all went first, the last rule stays.
    assert (leaf / "devices.deny").read_text() == "a"
    assert (leaf / "devices.allow").read_text() == "c 136:* rwm"
    first.remove()
    assert leaf.is_dir()  # not the task's to remove


def test_v1_a_parent_gc_removed_is_made_again_for_the_next_task(tmp_path: Path) -> None:
    manager = v1_tree(tmp_path)
    manager.create("t1", Limits()).remove()
    assert len(manager.remove_idle_parents()) == len(manager.mounts) - 1  # cpuset's keeps its files
    task = manager.create("t2", Limits())
    assert (tmp_path / "memory/own/lxrun/t2").is_dir() and (tmp_path / "cpu/own/lxrun/shared").is_dir()
    assert sorted(task.dirs) == ["cpuacct", "freezer", "memory", "pids"]
