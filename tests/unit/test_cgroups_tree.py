"""The cgroup trees of the lxc and docker backends (cgroups/tree.py) on fake trees, and the hierarchy
list discover.py reads them from."""

from __future__ import annotations

from pathlib import Path

from lxrun.cgroups.base import Usage
from lxrun.cgroups.discover import Hierarchy, hierarchies
from lxrun.cgroups.tree import TaskTree, undelegated
from lxrun.spec import Limits

PROC_CGROUP = """9:name=systemd:/
4:memory:/runner/7
2:cpu,cpuacct:/
0::/
"""
MOUNTINFO = """30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 /runner /sys/fs/cgroup/nested rw,relatime - cgroup cgroup rw,pids
"""


def test_hierarchies_of_a_hybrid_host() -> None:
    found = hierarchies(PROC_CGROUP, MOUNTINFO)
    assert [(h.mount, h.own, h.unified) for h in found] == [
        ("/sys/fs/cgroup/systemd", "/", False),
        ("/sys/fs/cgroup/memory", "/runner/7", False),
        ("/sys/fs/cgroup/cpu,cpuacct", "/", False),
        ("/sys/fs/cgroup/unified", "/", True),
    ]
    assert found[2].controllers == frozenset({"cpu", "cpuacct"})
    assert found[1].path("lxrun-lxc/t") == "/sys/fs/cgroup/memory/runner/7/lxrun-lxc/t"


def test_a_mount_of_a_subtree_is_read_relative_to_its_root() -> None:
    found = hierarchies("5:pids:/runner/job\n", MOUNTINFO)
    assert [(h.mount, h.own) for h in found] == [("/sys/fs/cgroup/nested", "/job")]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v1_usage_and_removal_on_a_fake_tree(tmp_path: Path) -> None:
    memory = Hierarchy(str(tmp_path / "memory"), "/", frozenset({"memory"}), False)
    cpuacct = Hierarchy(str(tmp_path / "cpuacct"), "/", frozenset({"cpuacct"}), False)
    pids = Hierarchy(str(tmp_path / "pids"), "/", frozenset({"pids"}), False)
    for hierarchy in (memory, cpuacct, pids):
        Path(hierarchy.mount).mkdir()
    cgroups = TaskTree("t1", [memory, cpuacct, pids], "lxrun-lxc")
    with cgroups.created(Limits()):
        write(Path(memory.path("lxrun-lxc/t1/task/memory.max_usage_in_bytes")), "4096\n")
        write(Path(cpuacct.path("lxrun-lxc/t1/task/cpuacct.usage_user")), "1500000000\n")
        write(Path(cpuacct.path("lxrun-lxc/t1/task/cpuacct.usage_sys")), "500000000\n")
        write(Path(pids.path("lxrun-lxc/t1/task/pids.peak")), "3\n")
        oom_copy = tmp_path / "oom"
        oom_copy.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
        expected = Usage(oom_killed=True, peak_memory=4096, cpu_user=1.5, cpu_system=0.5, pids_peak=3)
        assert cgroups.usage(str(oom_copy)) == expected
        for path in Path(tmp_path).rglob("*"):
            if path.is_file():
                path.unlink()  # a real cgroup's files go with its rmdir
    assert [p.name for p in (tmp_path / "memory").iterdir()] == []


def test_v2_usage(tmp_path: Path) -> None:
    unified = Hierarchy(str(tmp_path), "/", frozenset({"cpu", "memory", "pids"}), True)
    task = tmp_path / "lxrun-lxc/t2/task"
    write(task / "cpu.stat", "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\n")
    write(task / "memory.peak", "8192\n")
    write(task / "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    write(task / "pids.peak", "2\n")
    expected = Usage(oom_killed=True, peak_memory=8192, cpu_user=0.002, cpu_system=0.001, pids_peak=2)
    assert TaskTree("t2", [unified], "lxrun-lxc").usage(None) == expected


def test_a_v2_cgroup_that_does_not_delegate_is_named(tmp_path: Path) -> None:
    unified = Hierarchy(str(tmp_path), "/", frozenset({"cpu", "memory", "pids"}), True)
    write(tmp_path / "cgroup.subtree_control", "memory\n")
    assert undelegated([unified]) == ["cpu", "pids"]
    write(tmp_path / "cgroup.subtree_control", "cpu memory pids\n")
    assert undelegated([unified]) == []
    legacy = Hierarchy("/sys/fs/cgroup/memory", "/", frozenset({"memory"}), False)
    assert undelegated([legacy, unified]) == []  # v1 memory: limits go through v1


def test_a_mount_of_another_subtree_is_not_ours() -> None:
    assert hierarchies("5:pids:/runner2/job\n", MOUNTINFO) == []  # /runner is a prefix, not a parent


def unlink_files(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            path.unlink()  # a real cgroup's files go with its rmdir


def test_cpu_shares_weigh_the_task_against_other_tasks_on_v1(tmp_path: Path) -> None:
    cpu = Hierarchy(str(tmp_path / "cpu"), "/", frozenset({"cpu"}), False)
    Path(cpu.mount).mkdir()
    tree = TaskTree("t3", [cpu], "lxrun-docker")
    with tree.created(Limits(cpu_shares=512)):
        assert (tmp_path / "cpu/lxrun-docker/t3/cpu.shares").read_text() == "512"
        assert (tmp_path / "cpu/lxrun-docker/t3/task").is_dir()
        unlink_files(tmp_path)
    assert list((tmp_path / "cpu").iterdir()) == []


def test_cpu_shares_weigh_as_cpu_weight_on_v2_and_controllers_are_delegated(tmp_path: Path) -> None:
    unified = Hierarchy(str(tmp_path), "/", frozenset({"cpu", "memory", "io"}), True)
    tree = TaskTree("t4", [unified], "lxrun-lxc")
    with tree.created(Limits(cpu_shares=512)):
        assert (tmp_path / "lxrun-lxc/t4/cpu.weight").read_text() == "20"
        assert (tmp_path / "lxrun-lxc/t4/task/cgroup.subtree_control").read_text() == "+memory +cpu"
        unlink_files(tmp_path)


def test_swap_accounting_is_read_from_the_tasks_memory_cgroup(tmp_path: Path) -> None:
    legacy = TaskTree("t5", [Hierarchy(str(tmp_path), "/", frozenset({"memory"}), False)], "lxrun-lxc")
    unified = TaskTree("t5", [Hierarchy(str(tmp_path), "/", frozenset({"memory"}), True)], "lxrun-lxc")
    assert not legacy.swap_accounting() and not unified.swap_accounting()
    write(tmp_path / "lxrun-lxc/t5/task/memory.swap.max", "max\n")
    assert unified.swap_accounting() and not legacy.swap_accounting()
    write(tmp_path / "lxrun-lxc/t5/task/memory.memsw.limit_in_bytes", "9223372036854771712\n")
    assert legacy.swap_accounting()
