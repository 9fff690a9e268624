"""The sandbox's filesystem as ordered lists of mount steps (plan).

The plan is pure data, built here and executed by the native helper: the host steps by its first
stage, which works in the sandbox's mount namespace with the host's privileges (private
propagation, the task's own tmpfs, the layers idmapped into the task's user namespace, the overlay
root, the task's /dev tmpfs and its device nodes, sysfs of the task's network namespace); the
sandbox steps by its second stage, in the task's namespaces (/proc, /dev, /sys/fs/cgroup, /tmp,
volumes, masked and read-only paths, pivot_root). Every in-root target is resolved inside the new
root, so a symlink in a layer can never point a mount at the host; volume sources are opened on the
host with no symlink followed (volume_steps).
"""

from __future__ import annotations

import os

from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from lxrun.cgroups.base import CgroupView
    from lxrun.plan import PlannedVolume

# Operations. Host ops take host paths; FS, BIND and MKDIR targets are paths inside the new root.
# HOST_WRITE writes `data` to a new file.
HOST_MKDIR = "host-mkdir"
HOST_MOUNT = "host-mount"
OPEN_ROOT = "open-root"
FS = "fs"
BIND = "bind"
MKDIR = "mkdir"
PIVOT_ROOT = "pivot"

HOST_BIND = "host-bind"
HOST_WRITE = "host-write"
HOST_MKNOD = "host-mknod"
REBIND = "rebind"
# A volume: HOST_VOLUME stages it (source opened with no symlink followed), MOVE puts it on its target.
HOST_VOLUME = "host-volume"
MOVE = "move"
SYMLINK = "symlink"  # a link at an in-root target whose text is `source`
SET_ATTR = "set-attr"  # `attrs` set on the mount at an in-root target, no new mount

# What to do when an in-root target is missing: fail, create it, or skip the step.
CREATE_NONE = "none"
CREATE_DIR = "dir"
CREATE_FILE = "file"
CREATE_SKIP = "skip"

# Hidden from the task, as runc hides them: kernel memory, keys, timers, hardware and firmware.
MASKED_FILES = (
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
)
MASKED_DIRS = ("/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
HARDENED = frozenset({"nosuid", "nodev", "noexec"})
TMP_SIZE = "256m"  # /tmp is RAM: capped, so a task filling it gets ENOSPC, not the host's memory
DEV_SIZE = "64m"  # /dev, as docker's: room for sockets and fifos, not for data

# The task's /dev, as docker's: a tmpfs of its own holding the nodes a program expects (made by the
# first stage, which may mknod: a user namespace can't), links into /proc, pts, shm and mqueue.
DEV_MOUNT_POINTS = ("pts", "shm", "mqueue")  # what sandbox_steps mounts in /dev
DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}
CGROUP = "/sys/fs/cgroup"
# An owner that stands for the task's root, whichever uid range it drew (the helper's request names
# it): steps owned by it are the same for every task of a kind, so they are built once.
TASK_ROOT = -2


class MountStep(Record):
    """One step. `flags` are mount(2) flag names (rec, private, bind, ro, nosuid, nodev, noexec) for host
    ops and BIND's rec; `attrs` are mount attributes (ro, nosuid, nodev, noexec) set on FS and BIND
    mounts. `owner`: the host uid (and gid) a host step's file belongs to, TASK_ROOT for the task's
    root; None keeps root. `what` names the step in error messages."""

    __slots__ = (
        "attrs",
        "create",
        "data",
        "device",
        "flags",
        "fstype",
        "mode",
        "op",
        "owner",
        "source",
        "target",
        "what",
    )
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
    owner: int | None
    device: int

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
        owner: int | None = None,
        device: int = 0,
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
            owner=owner,
            device=device,
        )


def overlayfs_available() -> bool:
    """Registered, or a module the kernel loads on the first overlay mount (as on a fresh Debian boot)."""
    with open("/proc/filesystems") as filesystems:
        if "overlay" in filesystems.read():
            return True
    return os.path.isdir(f"/lib/modules/{os.uname().release}/kernel/fs/overlayfs")


def overlay_options(layers: Sequence[str], upper: str, work: str) -> str:
    # overlayfs lists lowerdirs top-most first; ours are given lowest first.
    lower = ":".join(reversed(layers))
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def host_steps(
    layers: Sequence[str],
    scratch: str,
    kept_dir: str | None = None,
    root_owner: int | None = None,
    disk: int | None = None,
    rootfs: str | None = None,
) -> list[MountStep]:
    """The first stage's part: private propagation, the task's tmpfs on `scratch`, the overlay root on
    it (opened as the root for what follows), and sysfs of the task's network namespace. With `rootfs`
    (an OCI bundle's root directory) that directory itself is the root, bound with what is mounted below
    it, and its writes land there, as runc's do; `layers` are then unused.

    The upper and work dirs live on the task's tmpfs (gone with its mount namespace), or in
    `kept_dir` on disk when its writes must outlive it (--keep). With a user namespace, `root_owner`
    is the owner of the task's root (a host uid, or TASK_ROOT): each layer is bound idmapped into the
    task's namespace (so its files belong to the task's root, not to nobody) and the upper dir
    belongs to that root.
    `disk` caps the task's tmpfs (its writes to the root) in bytes."""
    root = f"{scratch}/root"
    if rootfs is not None:
        return [
            *_scratch_steps(scratch, disk, root),
            *dev_host_steps(scratch, root_owner),
            MountStep(HOST_BIND, root, "bundle root", source=rootfs, flags=frozenset({"rec"})),
            *_root_steps(root),
        ]
    upper, work = (
        (f"{scratch}/upper", f"{scratch}/work") if kept_dir is None else (f"{kept_dir}/upper", f"{kept_dir}/work")
    )
    steps = [
        *_scratch_steps(scratch, disk, root),
        MountStep(HOST_MKDIR, upper, "task tmpfs", owner=root_owner),
        MountStep(HOST_MKDIR, work, "task tmpfs"),
    ]
    lowers = list(layers)
    if root_owner is not None:
        lowers = [f"{scratch}/lower{n}" for n in range(len(layers))]
        for layer, lower in zip(layers, lowers, strict=True):
            steps += [
                MountStep(HOST_MKDIR, lower, "idmapped layer"),
                MountStep(HOST_BIND, lower, f"idmapped layer {layer}", source=layer, attrs=frozenset({"ro", "idmap"})),
            ]
    steps += dev_host_steps(scratch, root_owner)
    steps += [
        MountStep(
            HOST_MOUNT,
            root,
            "overlay root",
            source="lxrun",
            fstype="overlay",
            data=overlay_options(lowers, upper, work),
        ),
        *_root_steps(root),
    ]
    return steps


def _scratch_steps(scratch: str, disk: int | None, root: str) -> list[MountStep]:
    """Private propagation, then the task's tmpfs at `scratch` with the root's mount point on it."""
    return [
        MountStep(HOST_MOUNT, "/", "make mounts private", flags=frozenset({"rec", "private"})),
        MountStep(
            HOST_MOUNT,
            scratch,
            "task tmpfs",
            source="lxrun",
            fstype="tmpfs",
            data=f"mode=0755,size={disk}" if disk else "mode=0755",
        ),
        MountStep(HOST_MKDIR, root, "task tmpfs"),
    ]


def _root_steps(root: str) -> list[MountStep]:
    """The assembled root opened for what follows, and sysfs of the task's network namespace in it."""
    return [
        MountStep(OPEN_ROOT, root, "overlay root"),
        MountStep(FS, "/sys", "mount /sys", fstype="sysfs", source="sysfs", attrs=HARDENED | {"ro"}, create=CREATE_DIR),
    ]


def dev_host_steps(scratch: str, root_owner: int | None) -> list[MountStep]:
    """The task's /dev, made at `scratch`/dev for the second stage to bind: a capped tmpfs of its own,
    owned by the task's root (so it can make sockets and fifos there), with the device nodes. Made by
    the first stage, in the host's user namespace: a node made there opens, one made in the task's
    can't be made at all, and a bind of the host's would show the host's devtmpfs (and its size)."""
    dev = f"{scratch}/dev"
    steps = [
        MountStep(HOST_MKDIR, dev, "task /dev"),
        MountStep(HOST_MOUNT, dev, "task /dev", source="tmpfs", fstype="tmpfs", data=f"mode=0755,size={DEV_SIZE}"),
        MountStep(HOST_MKDIR, dev, "task /dev", owner=root_owner),  # chown: a uid= option would show in mountinfo
    ]
    steps += [
        MountStep(
            HOST_MKNOD, f"{dev}/{name}", f"/dev/{name}", mode=0o666, owner=root_owner, device=os.makedev(major, minor)
        )
        for name, (major, minor) in DEV_NODES.items()
    ]
    # Mount points, made here in one call each: inside the root each would cost five (lookups, mkdirat).
    steps += [MountStep(HOST_MKDIR, f"{dev}/{name}", f"/dev/{name}") for name in DEV_MOUNT_POINTS]
    return steps


def sandbox_steps(scratch: str, disk: int | None = None, cgroup: Sequence[MountStep] = ()) -> list[MountStep]:
    """The second stage's own filesystems: /proc, /dev (the task's, see dev_host_steps), the task's
    cgroup (`cgroup`: cgroup_steps' second part), /tmp (capped at `disk` bytes, else TMP_SIZE), as a
    container's, then the masks."""
    steps = [
        MountStep(OPEN_ROOT, f"{scratch}/root", "overlay root"),
        MountStep(FS, "/proc", "mount /proc", fstype="proc", source="proc", attrs=HARDENED, create=CREATE_DIR),
        MountStep(
            BIND,
            "/dev",
            "mount /dev",
            source=f"{scratch}/dev",
            attrs=frozenset({"nosuid", "noexec"}),
            create=CREATE_DIR,
        ),
    ]
    steps += [MountStep(SYMLINK, f"/dev/{name}", f"link /dev/{name}", source=link) for name, link in DEV_LINKS.items()]
    steps += [
        MountStep(
            FS,
            "/dev/pts",
            "mount /dev/pts",
            fstype="devpts",
            source="devpts",
            data="newinstance,ptmxmode=0666,mode=0620,gid=5",
            attrs=frozenset({"nosuid", "noexec"}),
            create=CREATE_DIR,
        ),
        MountStep(
            FS,
            "/dev/shm",
            "mount /dev/shm",
            fstype="tmpfs",
            source="shm",
            data="mode=1777,size=65536k",
            attrs=HARDENED,
            create=CREATE_DIR,
        ),
        MountStep(
            FS, "/dev/mqueue", "mount /dev/mqueue", fstype="mqueue", source="mqueue", attrs=HARDENED, create=CREATE_DIR
        ),
    ]
    steps += cgroup
    steps += [
        MountStep(
            FS,
            "/tmp",
            "mount /tmp",
            fstype="tmpfs",
            source="tmpfs",
            data=f"mode=1777,size={disk or TMP_SIZE}",
            attrs=frozenset({"nosuid", "nodev"}),
            create=CREATE_DIR,
        ),
    ]
    return steps + mask_steps(scratch, MASKED_FILES, MASKED_DIRS, READ_ONLY)


def mask_steps(scratch: str, files: Sequence[str], dirs: Sequence[str], read_only: Sequence[str]) -> list[MountStep]:
    """Masked and read-only paths as runc makes them, each skipped where the root lacks it: a file masked
    by the task's own /dev/null (a bind of the host's would show the host's devtmpfs in mountinfo), a
    directory by an empty read-only tmpfs; a read-only path bound on itself read-only. The read-only
    ones first, as runc, so a path in both ends masked."""
    steps = [
        MountStep(
            REBIND, path, f"read-only {path}", flags=frozenset({"rec"}), attrs=frozenset({"ro"}), create=CREATE_SKIP
        )
        for path in read_only
    ]
    steps += [MountStep(BIND, path, f"mask {path}", source=f"{scratch}/dev/null", create=CREATE_SKIP) for path in files]
    steps += [
        MountStep(
            FS,
            path,
            f"mask {path}",
            fstype="tmpfs",
            source="masked",
            data="size=0",
            attrs=HARDENED | {"ro"},
            create=CREATE_SKIP,
        )
        for path in dirs
    ]
    return steps


def extra_mask_steps(
    scratch: str, masked: Sequence[str], read_only: Sequence[str], rootfs: str | None
) -> list[MountStep]:
    """mask_steps for the paths a plan masks and makes read-only beyond the sandbox's own (which stay: lxrun
    never unmasks them). Whether a masked path is a directory is read where it will be: /proc and /sys
    from the host's (the same kernel's), others in `rootfs`; a wrong answer (a root that changes under
    us) fails the mount, it never reaches outside the root (the target is resolved in it)."""
    own = {*MASKED_FILES, *MASKED_DIRS}
    paths = [path for path in dict.fromkeys(masked) if path not in own]
    dirs = [path for path in paths if _is_dir(path, rootfs)]
    files = [path for path in paths if path not in dirs]
    return mask_steps(scratch, files, dirs, [path for path in dict.fromkeys(read_only) if path not in READ_ONLY])


def _is_dir(path: str, rootfs: str | None) -> bool:
    if path.startswith(("/proc/", "/sys/")) or rootfs is None:
        return os.path.isdir(path)
    return os.path.isdir(f"{rootfs}{path}")


def cgroup_steps(scratch: str, view: CgroupView) -> tuple[list[MountStep], list[MountStep]]:
    """The task's own cgroup, read-only at /sys/fs/cgroup, as runc mounts it: (first stage's steps,
    second stage's). Mounted by the second stage inside the task's cgroup namespace, each mount's
    root is the task's cgroup: nothing above it shows. cgroup v2: one cgroup2 mount. v1: a tmpfs
    holding one mount per hierarchy and the links to co-mounted ones, then made read-only itself;
    the first stage makes that tmpfs, as it does /dev, so the second can write to it before it
    takes on the task's uid."""
    read_only = HARDENED | {"ro"}
    if view.unified:
        return [], [MountStep(FS, CGROUP, f"mount {CGROUP}", fstype="cgroup2", source="cgroup2", attrs=read_only)]
    tree = f"{scratch}/cgroup"
    host = [
        MountStep(HOST_MKDIR, tree, f"task {CGROUP}"),
        MountStep(HOST_MOUNT, tree, f"task {CGROUP}", source="tmpfs", fstype="tmpfs", data="mode=0755,size=64k"),
    ]
    host += [MountStep(HOST_MKDIR, f"{tree}/{name}", f"task {CGROUP}/{name}") for name in view.hierarchies]
    sandbox = [MountStep(BIND, CGROUP, f"mount {CGROUP}", source=tree, attrs=HARDENED)]
    sandbox += [
        MountStep(
            FS,
            f"{CGROUP}/{name}",
            f"mount {CGROUP}/{name}",
            fstype="cgroup",
            source="cgroup",
            data=options,
            attrs=read_only,
            create=CREATE_DIR,
        )
        for name, options in view.hierarchies.items()
    ]
    sandbox += [
        MountStep(SYMLINK, f"{CGROUP}/{name}", f"link {CGROUP}/{name}", source=to) for name, to in view.links.items()
    ]
    sandbox.append(MountStep(SET_ATTR, CGROUP, f"read-only {CGROUP}", attrs=read_only))
    return host, sandbox


def volume_steps(
    volumes: Sequence[PlannedVolume], scratch: str, userns: bool
) -> tuple[list[MountStep], list[MountStep]]:
    """Each volume in two steps. The first stage opens its source with no symlink followed (a task may
    have planted one where it could write), clones that very mount (recursively, read-only if asked,
    and idmapped into the task's user namespace when the task has one and the volume doesn't opt out:
    only the host's privileges may idmap) and stages it on the task's tmpfs; the second stage moves it
    onto its target, resolved inside the new root, after /proc, /dev, /tmp and the task's /etc files."""
    host, sandbox = [], []
    for number, planned in enumerate(volumes):
        volume = planned.volume
        what = f"volume {volume.source}:{volume.target}"
        staged = f"{scratch}/volume{number}"
        attrs = {"ro"} if volume.read_only else set()
        if userns and volume.idmap:
            attrs.add("idmap")
        host += [
            MountStep(HOST_MKDIR, staged, what) if planned.is_dir else MountStep(HOST_WRITE, staged, what, data=""),
            MountStep(
                HOST_VOLUME, staged, what, source=volume.source, flags=frozenset({"rec"}), attrs=frozenset(attrs)
            ),
        ]
        sandbox.append(
            MountStep(
                MOVE,
                volume.target,
                what,
                source=staged,
                create=CREATE_DIR if planned.is_dir else CREATE_FILE,
                mode=0o755 if planned.is_dir else 0o644,
            )
        )
    return host, sandbox


def etc_file_steps(
    scratch: str, files: Mapping[str, str], owner: int | None
) -> tuple[list[MountStep], list[MountStep]]:
    """The task's own /etc files (lxrun/net/etc.py): the first stage writes them on the task's tmpfs
    (owned by the task's root), the second binds them over the stack's. Bound before the volumes, so
    `-v FILE:/etc/hosts` wins."""
    directory = f"{scratch}/etc"
    host = [MountStep(HOST_MKDIR, directory, "task /etc files")]
    sandbox = []
    for target, content in files.items():
        source = f"{directory}/{os.path.basename(target)}"
        host.append(MountStep(HOST_WRITE, source, f"write {target}", data=content, mode=0o644, owner=owner))
        sandbox.append(
            MountStep(BIND, target, f"bind {target}", source=source, attrs=HARDENED, create=CREATE_FILE, mode=0o644)
        )
    return host, sandbox


def workdir_step(workdir: str) -> MountStep:
    return MountStep(MKDIR, workdir, "workdir", create=CREATE_DIR)


PIVOT = MountStep(PIVOT_ROOT, "/", "pivot_root")
# A read-only root (OCI root.readonly, docker --read-only): set last, once every mount point exists.
READ_ONLY_ROOT = MountStep(SET_ATTR, "/", "read-only root", attrs=frozenset({"ro"}))
