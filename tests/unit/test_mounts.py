from __future__ import annotations

import os

from lxrun.cgroups.base import CgroupView
from lxrun.plan import PlannedVolume
from lxrun.sandbox import mounts
from lxrun.sandbox.mounts import (
    PIVOT,
    cgroup_steps,
    host_steps,
    overlay_options,
    sandbox_steps,
    volume_steps,
    workdir_step,
)
from lxrun.spec import Volume


def test_overlay_lists_the_top_layer_first() -> None:
    options = overlay_options(["/l/base", "/l/python", "/l/media"], "/s/upper", "/s/work")
    assert options == "lowerdir=/l/media:/l/python:/l/base,upperdir=/s/upper,workdir=/s/work"


def test_host_steps_make_mounts_private_first_and_keep_upper_on_the_task_tmpfs() -> None:
    steps = host_steps(["/l/base"], "/r/scratch")
    assert steps[0].op == mounts.HOST_MOUNT and steps[0].flags == {"rec", "private"}
    assert steps[1].fstype == "tmpfs" and steps[1].target == "/r/scratch"
    overlay = next(step for step in steps if step.fstype == "overlay")
    assert overlay.data == "lowerdir=/l/base,upperdir=/r/scratch/upper,workdir=/r/scratch/work"
    assert [s.op for s in steps[-2:]] == [mounts.OPEN_ROOT, mounts.FS]
    assert steps[-1].fstype == "sysfs" and "ro" in steps[-1].attrs  # sysfs of the task's network namespace


def test_with_a_user_namespace_layers_are_idmapped_and_upper_belongs_to_the_tasks_root() -> None:
    steps = host_steps(["/l/base", "/l/python"], "/r/scratch", root_owner=100000)
    binds = [step for step in steps if step.op == mounts.HOST_BIND]
    assert [(b.source, b.target) for b in binds] == [
        ("/l/base", "/r/scratch/lower0"),
        ("/l/python", "/r/scratch/lower1"),
    ]
    assert all(b.attrs == {"ro", "idmap"} for b in binds)
    overlay = next(step for step in steps if step.fstype == "overlay")
    assert (overlay.data or "").startswith("lowerdir=/r/scratch/lower1:/r/scratch/lower0,")
    upper = next(step for step in steps if step.target == "/r/scratch/upper")
    assert upper.owner == 100000


def test_kept_upper_lives_on_disk() -> None:
    steps = host_steps(["/l/base"], "/r/scratch", "/r/kept/t1")
    overlay = next(step for step in steps if step.fstype == "overlay")
    assert "upperdir=/r/kept/t1/upper,workdir=/r/kept/t1/work" in (overlay.data or "")


def test_sandbox_mounts() -> None:
    steps = sandbox_steps("/r/scratch")
    assert steps[0].op == mounts.OPEN_ROOT and steps[0].target == "/r/scratch/root"
    by_target = {step.target: step for step in steps}
    assert by_target["/proc"].fstype == "proc"
    assert "newinstance" in (by_target["/dev/pts"].data or "")
    assert by_target["/dev/mqueue"].fstype == "mqueue"
    assert by_target["/tmp"].fstype == "tmpfs"
    assert "/sys/fs/cgroup" not in by_target  # no cgroup, nothing to show


def test_dev_is_the_tasks_own_tmpfs_with_nodes_made_by_the_first_stage() -> None:
    host = host_steps(["/l/base"], "/r/scratch", root_owner=100000)
    dev_mount = next(step for step in host if step.target == "/r/scratch/dev" and step.op == mounts.HOST_MOUNT)
    assert dev_mount.fstype == "tmpfs" and "size=64m" in (dev_mount.data or "") and "uid" not in (dev_mount.data or "")
    assert any(s.target == "/r/scratch/dev" and s.owner == 100000 for s in host)  # the task's root may add sockets
    nodes = {step.target: step for step in host if step.op == mounts.HOST_MKNOD}
    assert nodes["/r/scratch/dev/null"].device == os.makedev(1, 3) and nodes["/r/scratch/dev/null"].mode == 0o666
    assert len(nodes) == len(mounts.DEV_NODES)
    assert host.index(dev_mount) < host.index(next(s for s in host if s.op == mounts.OPEN_ROOT))
    by_target = {step.target: step for step in sandbox_steps("/r/scratch")}
    assert by_target["/dev"].op == mounts.BIND and by_target["/dev"].source == "/r/scratch/dev"
    assert by_target["/dev"].attrs == {"nosuid", "noexec"}  # writable: sockets and fifos
    assert by_target["/dev/ptmx"].op == mounts.SYMLINK and by_target["/dev/ptmx"].source == "pts/ptmx"


def test_cgroup_v2_is_one_read_only_cgroup2_mount() -> None:
    host, sandbox = cgroup_steps("/r/scratch", CgroupView(unified=True))
    assert host == []
    assert [(s.op, s.target, s.fstype) for s in sandbox] == [(mounts.FS, "/sys/fs/cgroup", "cgroup2")]
    assert "ro" in sandbox[0].attrs
    assert sandbox[0] in sandbox_steps("/r/scratch", cgroup=sandbox)


def test_cgroup_v1_is_a_read_only_tmpfs_of_hierarchies_and_links() -> None:
    view = CgroupView(
        unified=False, hierarchies={"memory": "memory", "cpu,cpuacct": "cpu,cpuacct"}, links={"cpu": "cpu,cpuacct"}
    )
    host, sandbox = cgroup_steps("/r/scratch", view)
    assert [s.op for s in host] == [mounts.HOST_MKDIR, mounts.HOST_MOUNT, mounts.HOST_MKDIR, mounts.HOST_MKDIR]
    assert host[1].fstype == "tmpfs"
    # each hierarchy's mount point, made on the tmpfs by the first stage
    assert [s.target for s in host[2:]] == ["/r/scratch/cgroup/memory", "/r/scratch/cgroup/cpu,cpuacct"]
    assert sandbox[0].op == mounts.BIND and (sandbox[0].source, sandbox[0].target) == (
        "/r/scratch/cgroup",
        "/sys/fs/cgroup",
    )
    mounted = {s.target: s for s in sandbox if s.fstype == "cgroup"}
    assert (
        mounted["/sys/fs/cgroup/cpu,cpuacct"].data == "cpu,cpuacct" and "ro" in mounted["/sys/fs/cgroup/memory"].attrs
    )
    link = next(s for s in sandbox if s.op == mounts.SYMLINK)
    assert (link.target, link.source) == ("/sys/fs/cgroup/cpu", "cpu,cpuacct")
    assert sandbox[-1].op == mounts.SET_ATTR and sandbox[-1].target == "/sys/fs/cgroup" and "ro" in sandbox[-1].attrs


def test_masked_and_read_only_paths_like_runc() -> None:
    steps = {step.target: step for step in sandbox_steps("/r/scratch")}
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"):
        # the task's own /dev/null: the host's would show the host's devtmpfs (its size) in mountinfo
        assert steps[path].op == mounts.BIND and steps[path].source == "/r/scratch/dev/null"
    for path in ("/proc/scsi", "/sys/firmware"):
        assert steps[path].fstype == "tmpfs" and "ro" in steps[path].attrs
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"):
        assert steps[path].op == mounts.REBIND and steps[path].attrs == {"ro"}
    assert all(steps[path].create == mounts.CREATE_SKIP for path in (*mounts.MASKED_FILES, *mounts.READ_ONLY))
    order = list(steps)
    assert order.index("/proc") < order.index("/proc/kcore")


def test_volume_steps() -> None:
    volumes = [
        PlannedVolume(Volume("/src", "/data", read_only=True), is_dir=True),
        PlannedVolume(Volume("/etc/hosts", "/etc/hosts", idmap=False), is_dir=False),
    ]
    host, sandbox = volume_steps(volumes, "/s", userns=True)
    assert [(step.op, step.target) for step in host] == [
        (mounts.HOST_MKDIR, "/s/volume0"),
        (mounts.HOST_VOLUME, "/s/volume0"),
        (mounts.HOST_WRITE, "/s/volume1"),
        (mounts.HOST_VOLUME, "/s/volume1"),
    ]
    assert (host[1].source, host[1].attrs, host[1].flags) == ("/src", {"ro", "idmap"}, {"rec"})
    assert (host[3].source, host[3].attrs) == ("/etc/hosts", frozenset())  # opted out of idmapping
    ro_dir, rw_file = sandbox
    assert (ro_dir.op, ro_dir.source, ro_dir.target, ro_dir.create) == (
        mounts.MOVE,
        "/s/volume0",
        "/data",
        mounts.CREATE_DIR,
    )
    assert (rw_file.source, rw_file.target, rw_file.create) == ("/s/volume1", "/etc/hosts", mounts.CREATE_FILE)
    assert "/src:/data" in ro_dir.what and all(step.what == ro_dir.what for step in host[:2])
    host, _ = volume_steps(volumes, "/s", userns=False)
    assert not any("idmap" in step.attrs for step in host)


def test_workdir_and_pivot() -> None:
    assert workdir_step("/srv").op == mounts.MKDIR
    assert PIVOT.op == mounts.PIVOT_ROOT
