"""A TaskPlan as an LXC container config file (pure text; the lxc backend writes and starts it).

The same sandbox as the native backend's: an overlay of the stack's layers with the task's own upper
dir, new mount/pid/uts/ipc/net/cgroup namespaces with only `lo` (up), a fresh /proc, a small /dev with
pts and shm, /tmp on tmpfs, /sys read-only, the task's hostname, env, workdir and volumes, and
lxrun-init as pid 1 (bound read-only at /dev/.lxrun-init), so exit statuses and signals behave alike.

A config file rather than set_config_item: python-lxc refuses `lxc.rootfs.path = overlay:...` that
way. Debian's common.conf is not included: its lxcfs hook costs ~0.5 s per start.
"""

from __future__ import annotations

import shlex

from lxrun.cgroups.limits import v1_files, v2_files
from lxrun.errors import Unsupported
from lxrun.net.spec import HOST, NONE
from lxrun.record import Record
from lxrun.sandbox.mounts import TMP_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.cgroups.tree import TaskTree
    from lxrun.plan import TaskPlan
    from lxrun.spec import Limits

INIT_TARGET = "/dev/.lxrun-init"


class LxcPaths(Record):
    """Host paths a container config names: the task's upper dir, its log, the init binary, on v1 the
    container's memory.oom_control with where the stop hook copies it before LXC removes that cgroup,
    and the task's own /etc files as (host file, /etc path) pairs (lxrun/net/etc.py)."""

    __slots__ = ("etc_files", "init", "log", "oom_control", "oom_copy", "upper")
    upper: str
    log: str
    init: str
    oom_control: str | None
    oom_copy: str | None
    etc_files: tuple[tuple[str, str], ...]

    def __init__(
        self,
        upper: str,
        log: str,
        init: str,
        oom_control: str | None,
        oom_copy: str | None,
        etc_files: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(
            upper=upper, log=log, init=init, oom_control=oom_control, oom_copy=oom_copy, etc_files=etc_files
        )


def _escape(path: str) -> str:
    """fstab-style escaping for lxc.mount.entry fields."""
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")


def container_cgroup(tree: TaskTree) -> str:
    """LXC's container cgroup, with the limits: below the tree's `task` dir, where usage is read."""
    return f"{tree.task}/ct"


def limit_lines(limits: Limits, legacy: bool, swap_accounting: bool) -> list[str]:
    """Limits as lxc.cgroup.* items (v1) or lxc.cgroup2.* items (v2): the files of cgroups/limits.py's
    table, in its order."""
    if legacy:
        return [f"lxc.cgroup.{name} = {value}" for name, value in v1_files(limits, swap_accounting).items()]
    return [f"lxc.cgroup2.{name} = {value}" for name, value in v2_files(limits, swap_accounting).items()]


def network_lines(plan: TaskPlan) -> list[str]:
    """none: a namespace with only lo, up (type empty with flags up); host: the host's own namespace."""
    mode = plan.spec.network.mode
    if mode == HOST:
        return ["lxc.net.0.type = none"]
    if mode != NONE:
        raise Unsupported("network", f"{mode} is native's only; the lxc backend runs none or host", hint="use native")
    return ["lxc.net.0.type = empty", "lxc.net.0.flags = up"]


def tmp_size(plan: TaskPlan) -> str:
    """/tmp is RAM: capped, at --disk or native's default, so filling it is ENOSPC, not the host's memory."""
    return str(plan.spec.disk) if plan.spec.disk is not None else TMP_SIZE


def check_one_line(plan: TaskPlan) -> None:
    """A config file is line-based: a newline in a value would end it and start another key."""
    values = {"workdir": plan.workdir, "hostname": plan.hostname}
    values.update({f"env {key}": value for key, value in plan.env.items()})
    for what, value in values.items():
        if "\n" in value or "\r" in value:
            raise Unsupported(what, "contains a line break, which the lxc backend can't pass", hint="use native")


def security_lines(plan: TaskPlan) -> list[str]:
    """What LXC can honour of the task's security: its capabilities (docker's default set with --cap-add
    and --cap-drop applied), no_new_privs and the user. Not a private user namespace, not a seccomp
    profile (LXC's format is not Docker's): docs/backends.md says so."""
    caps = sorted(name.lower() for name in plan.spec.security.caps)
    uid, gid = plan.user
    return [
        f"lxc.cap.keep = {' '.join(caps) if caps else 'none'}",
        "lxc.no_new_privs = 1",
        f"lxc.init.uid = {uid}",
        f"lxc.init.gid = {gid}",
    ]


def render(plan: TaskPlan, paths: LxcPaths, cgroups: TaskTree, legacy: bool, swap_accounting: bool) -> str:
    check_one_line(plan)
    # overlayfs lists lowerdirs top-most first; LXC takes "overlay:LOWER:UPPER" (its work dir is UPPER/../work).
    lower = ":".join(reversed(plan.stack.layer_paths))
    lines = [
        f"lxc.uts.name = {plan.hostname}",
        f"lxc.rootfs.path = overlay:{lower}:{paths.upper}",
        *network_lines(plan),
        "lxc.mount.auto = proc:mixed sys:ro",
        "lxc.autodev = 1",
        "lxc.pty.max = 1024",
        "lxc.console.path = none",  # stdio is the caller's, not a console pty
        "lxc.tty.max = 0",
        "lxc.cgroup.relative = 1",
        f"lxc.cgroup.dir.container = {container_cgroup(cgroups)}",
        f"lxc.cgroup.dir.monitor = {cgroups.relative}/monitor",  # it moves to pivot before it exits
        f"lxc.cgroup.dir.monitor.pivot = {cgroups.relative}/pivot",
        "lxc.mount.entry = shm dev/shm tmpfs rw,nosuid,nodev,noexec,mode=1777,size=65536k,create=dir 0 0",
        f"lxc.mount.entry = tmpfs tmp tmpfs rw,nosuid,nodev,mode=1777,size={tmp_size(plan)},create=dir 0 0",
        f"lxc.mount.entry = {_escape(paths.init)} {INIT_TARGET.lstrip('/')} none bind,ro,create=file 0 0",
    ]
    # Before the volumes, as native's: `-v FILE:/etc/hosts` wins.
    for source, target in paths.etc_files:
        lines.append(f"lxc.mount.entry = {_escape(source)} {_escape(target.lstrip('/'))} none bind,create=file 0 0")
    for planned in plan.volumes:
        volume = planned.volume
        options = ["rbind", "create=dir" if planned.is_dir else "create=file"]
        if volume.read_only:
            options.append("ro")
        source, target = _escape(volume.source), _escape(volume.target.lstrip("/"))
        lines.append(f"lxc.mount.entry = {source} {target} none {','.join(options)} 0 0")
    lines.append(f"lxc.init.cwd = {plan.workdir}")
    lines += security_lines(plan)
    lines += [f"lxc.environment = {key}={value}" for key, value in plan.env.items()]
    lines += limit_lines(plan.spec.limits, legacy, swap_accounting)
    if paths.oom_control is not None and paths.oom_copy is not None:
        # Hooks run as `sh -c "HOOK NAME lxc stop ..."`: the trailing # drops LXC's arguments.
        copy = f"cat {shlex.quote(paths.oom_control)} > {shlex.quote(paths.oom_copy)} #"
        lines.append(f"lxc.hook.stop = {copy}")
    lines += [f"lxc.log.file = {paths.log}", "lxc.log.level = ERROR"]
    return "\n".join(lines) + "\n"
