from __future__ import annotations

from lxrun.plan import PlannedVolume
from lxrun.sandbox import mounts
from lxrun.sandbox.mounts import PIVOT, host_steps, overlay_options, sandbox_steps, volume_steps, workdir_step
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
    steps = sandbox_steps("/r/scratch", "/r/dev")
    assert steps[0].op == mounts.OPEN_ROOT and steps[0].target == "/r/scratch/root"
    by_target = {step.target: step for step in steps}
    assert by_target["/proc"].fstype == "proc"
    assert by_target["/dev"].op == mounts.BIND and "ro" in by_target["/dev"].attrs
    assert "newinstance" in (by_target["/dev/pts"].data or "")
    assert by_target["/tmp"].fstype == "tmpfs"


def test_masked_and_read_only_paths_like_runc() -> None:
    steps = {step.target: step for step in sandbox_steps("/r/scratch", "/r/dev")}
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"):
        assert steps[path].op == mounts.BIND and steps[path].source == "/dev/null"
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
