from __future__ import annotations

from lxrun.sandbox import mounts
from lxrun.sandbox.mounts import PIVOT, host_steps, overlay_options, sandbox_steps, volume_step, workdir_step
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
    ro_dir = volume_step(Volume("/src", "/data", read_only=True), source_is_dir=True)
    assert ro_dir.attrs == {"ro"} and ro_dir.flags == {"rec"} and ro_dir.create == mounts.CREATE_DIR
    rw_file = volume_step(Volume("/etc/hosts", "/etc/hosts"), source_is_dir=False)
    assert rw_file.attrs == frozenset() and rw_file.create == mounts.CREATE_FILE
    assert "/src:/data" in ro_dir.what


def test_workdir_and_pivot() -> None:
    assert workdir_step("/srv").op == mounts.MKDIR
    assert PIVOT.op == mounts.PIVOT_ROOT
