from __future__ import annotations

from lxrun import mounts
from lxrun.mounts import PIVOT, overlay_options, rootfs_steps, system_steps, volume_step, workdir_step
from lxrun.spec import Volume


def test_overlay_lists_the_top_layer_first() -> None:
    options = overlay_options(["/l/base", "/l/python", "/l/media"], "/s/upper", "/s/work")
    assert options == "lowerdir=/l/media:/l/python:/l/base,upperdir=/s/upper,workdir=/s/work"


def test_rootfs_makes_mounts_private_first_and_keeps_upper_on_the_task_tmpfs() -> None:
    steps = rootfs_steps(["/l/base"], "/r/scratch")
    assert steps[0].op == mounts.HOST_MOUNT and steps[0].flags == {"rec", "private"}
    assert steps[1].fstype == "tmpfs" and steps[1].target == "/r/scratch"
    overlay = next(step for step in steps if step.fstype == "overlay")
    assert "upperdir=/r/scratch/upper" in (overlay.data or "")
    assert steps[-1].op == mounts.OPEN_ROOT and steps[-1].target == "/r/scratch/root"


def test_kept_upper_lives_on_disk() -> None:
    steps = rootfs_steps(["/l/base"], "/r/scratch", "/r/kept/t1")
    overlay = next(step for step in steps if step.fstype == "overlay")
    assert "upperdir=/r/kept/t1/upper,workdir=/r/kept/t1/work" in (overlay.data or "")
    assert not any(step.target == "/r/scratch/upper" for step in steps)


def test_system_mounts() -> None:
    steps = {step.target: step for step in system_steps("/r/dev")}
    assert steps["/proc"].fstype == "proc"
    assert steps["/dev"].op == mounts.BIND and "ro" in steps["/dev"].attrs
    assert steps["/sys"].fstype == "sysfs" and "ro" in steps["/sys"].attrs
    assert "newinstance" in (steps["/dev/pts"].data or "")
    assert steps["/tmp"].fstype == "tmpfs"
    assert all(step.op in (mounts.FS, mounts.BIND) for step in steps.values())


def test_volume_steps() -> None:
    ro_dir = volume_step(Volume("/src", "/data", read_only=True), source_is_dir=True)
    assert ro_dir.attrs == {"ro"} and ro_dir.flags == {"rec"} and ro_dir.create == mounts.CREATE_DIR
    rw_file = volume_step(Volume("/etc/hosts", "/etc/hosts"), source_is_dir=False)
    assert rw_file.attrs == frozenset() and rw_file.create == mounts.CREATE_FILE
    assert "/src:/data" in ro_dir.what


def test_workdir_and_pivot() -> None:
    assert workdir_step("/srv").op == mounts.MKDIR
    assert PIVOT.op == mounts.PIVOT_ROOT
