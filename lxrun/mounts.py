"""The sandbox's filesystem as an ordered list of mount steps (plan), and the /dev template they bind.

The plan is pure data, built here and executed by the native helper in the child: first the host
side (private propagation, the task's own tmpfs, the overlay root), then everything inside the new
root, each target resolved inside it so a symlink in a layer can never point a mount at the host.
"""

from __future__ import annotations

import os
import stat

from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from lxrun.layout import Layout
    from lxrun.spec import Volume

# Operations. Host ops take host paths; FS, BIND and MKDIR targets are paths inside the new root.
HOST_MKDIR = "host-mkdir"
HOST_MOUNT = "host-mount"
OPEN_ROOT = "open-root"
FS = "fs"
BIND = "bind"
MKDIR = "mkdir"
PIVOT_ROOT = "pivot"

# What to create when an in-root target is missing.
CREATE_NONE = "none"
CREATE_DIR = "dir"
CREATE_FILE = "file"


class MountStep(Record):
    """One step. `flags` are mount(2) flag names (rec, private, bind, ro, nosuid, nodev, noexec) for host
    ops and BIND's rec; `attrs` are mount attributes (ro, nosuid, nodev, noexec) set on FS and BIND
    mounts. `what` names the step in error messages."""

    __slots__ = ("attrs", "create", "data", "flags", "fstype", "mode", "op", "source", "target", "what")
    op: str
    target: str
    what: str
    source: str | None
    fstype: str | None
    data: str | None
    flags: frozenset[str]
    attrs: frozenset[str]
    create: str
    mode: int

    def __init__(
        self,
        op: str,
        target: str,
        what: str,
        source: str | None = None,
        fstype: str | None = None,
        data: str | None = None,
        flags: frozenset[str] = frozenset(),
        attrs: frozenset[str] = frozenset(),
        create: str = CREATE_NONE,
        mode: int = 0o755,
    ) -> None:
        super().__init__(
            op=op,
            target=target,
            what=what,
            source=source,
            fstype=fstype,
            data=data,
            flags=flags,
            attrs=attrs,
            create=create,
            mode=mode,
        )


def overlay_options(layers: Sequence[str], upper: str, work: str) -> str:
    # overlayfs lists lowerdirs top-most first; ours are given lowest first.
    lower = ":".join(reversed(layers))
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def rootfs_steps(layers: Sequence[str], scratch: str, kept_dir: str | None = None) -> list[MountStep]:
    """Private propagation, the task's tmpfs on `scratch`, the overlay root on it, opened as the new root.

    The upper and work dirs live on the task's tmpfs (gone with its mount namespace), or in
    `kept_dir` on disk when the task's writes must outlive it (--keep)."""
    root = f"{scratch}/root"
    upper, work = (
        (f"{scratch}/upper", f"{scratch}/work") if kept_dir is None else (f"{kept_dir}/upper", f"{kept_dir}/work")
    )
    steps = [
        MountStep(HOST_MOUNT, "/", "make mounts private", flags=frozenset({"rec", "private"})),
        MountStep(HOST_MOUNT, scratch, "task tmpfs", source="lxrun", fstype="tmpfs", data="mode=0755"),
        MountStep(HOST_MKDIR, root, "task tmpfs"),
    ]
    if kept_dir is None:
        steps += [MountStep(HOST_MKDIR, upper, "task tmpfs"), MountStep(HOST_MKDIR, work, "task tmpfs")]
    steps += [
        MountStep(
            HOST_MOUNT,
            root,
            "overlay root",
            source="lxrun",
            fstype="overlay",
            data=overlay_options(layers, upper, work),
        ),
        MountStep(OPEN_ROOT, root, "overlay root"),
    ]
    return steps


def system_steps(dev_template: str) -> list[MountStep]:
    """/proc, /dev, /tmp and a read-only /sys, as a container's own."""
    hardened = frozenset({"nosuid", "nodev", "noexec"})
    return [
        MountStep(FS, "/proc", "mount /proc", fstype="proc", source="proc", attrs=hardened, create=CREATE_DIR),
        MountStep(
            BIND,
            "/dev",
            "mount /dev",
            source=dev_template,
            attrs=frozenset({"ro", "nosuid", "noexec"}),
            create=CREATE_DIR,
        ),
        MountStep(
            FS,
            "/dev/pts",
            "mount /dev/pts",
            fstype="devpts",
            source="devpts",
            data="newinstance,ptmxmode=0666,mode=0620,gid=5",
            attrs=frozenset({"nosuid", "noexec"}),
        ),
        MountStep(
            FS, "/dev/shm", "mount /dev/shm", fstype="tmpfs", source="shm", data="mode=1777,size=65536k", attrs=hardened
        ),
        MountStep(
            FS,
            "/tmp",
            "mount /tmp",
            fstype="tmpfs",
            source="tmpfs",
            data="mode=1777",
            attrs=frozenset({"nosuid", "nodev"}),
            create=CREATE_DIR,
        ),
        MountStep(FS, "/sys", "mount /sys", fstype="sysfs", source="sysfs", attrs=hardened | {"ro"}, create=CREATE_DIR),
    ]


def volume_step(volume: Volume, source_is_dir: bool) -> MountStep:
    return MountStep(
        BIND,
        volume.target,
        f"volume {volume.source}:{volume.target}",
        source=volume.source,
        flags=frozenset({"rec"}),
        attrs=frozenset({"ro"}) if volume.read_only else frozenset(),
        create=CREATE_DIR if source_is_dir else CREATE_FILE,
        mode=0o755 if source_is_dir else 0o644,
    )


def workdir_step(workdir: str) -> MountStep:
    return MountStep(MKDIR, workdir, "workdir", create=CREATE_DIR)


PIVOT = MountStep(PIVOT_ROOT, "/", "pivot_root")

# The minimal /dev: the nodes a program expects, links into /proc, and mount points for pts and shm.
DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}


def ensure_dev_template(layout: Layout) -> str:
    """The /dev template, made once: binding one read-only tree is cheaper than mknod per task."""
    template = layout.dev_template
    if os.path.isdir(template):
        return template
    building = f"{layout.tmp}/dev-{os.urandom(4).hex()}"
    os.mkdir(building, 0o755)
    try:
        for name, (major, minor) in DEV_NODES.items():
            os.mknod(f"{building}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(f"{building}/{name}", 0o666)
        for name, link in DEV_LINKS.items():
            os.symlink(link, f"{building}/{name}")
        for name in ("pts", "shm"):
            os.mkdir(f"{building}/{name}", 0o755)
        try:
            os.rename(building, template)
        except OSError:
            # Another runner made it meanwhile: theirs is as good as ours.
            if not os.path.isdir(template):
                raise
    finally:
        if os.path.isdir(building):
            import shutil

            shutil.rmtree(building)
    return template
