"""The one composer of sandboxes: a SandboxPlan (pure data) becomes a running pid 1.

`Composer.start` acquires what the sandbox holds on the host (a uid range, a bridge attachment, a
cgroup, the descriptors the child enters its cgroup through), each registered in the caller's
ExitStack so it is released on every path, then turns the plan into the helper's mount steps and
request and starts it. The native backend runs tasks through it, stack builds run their steps
through it; whatever else builds sandboxes (warm pools, OCI containers) is to do the same.
"""

from __future__ import annotations

import contextlib
import os
import time

from lxrun import faults
from lxrun import signals as signal
from lxrun.errors import host_errors
from lxrun.net.etc import etc_files
from lxrun.net.spec import BRIDGE, HOST, NONE
from lxrun.record import Record
from lxrun.sandbox import helper, mounts
from lxrun.sandbox.seccomp import Compiler
from lxrun.sandbox.userns import load_pool, take_range
from lxrun.state import task_cgroup_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from lxrun.cgroups import CgroupManager, TaskCgroup
    from lxrun.cgroups.base import CgroupView
    from lxrun.layout import Layout
    from lxrun.net.spec import NetworkSpec
    from lxrun.plan import PlannedVolume
    from lxrun.sandbox.userns import IdPool, IdRange
    from lxrun.spec import Limits

NAMESPACES = frozenset({"mount", "pid", "uts", "ipc"})
# The sandbox's network as the helper's first stage takes it: a namespace of its own, the bridge's, the host's.
HELPER_NETWORK = {NONE: "new", BRIDGE: "join", HOST: "host"}
STEP_TABLES = 32  # kinds of sandbox whose shared steps a composer keeps built
# Held back while the helper starts, so an interrupt finds the new pid 1 owned by the ExitStack that kills it.
INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})

if TYPE_CHECKING:
    # What starts a SpawnRequest: the helper, or in unit tests a fake that needs no root.
    Spawn = Callable[[helper.SpawnRequest], helper.SandboxProcess]


class SandboxPlan(Record):
    """One sandbox, decided before it exists.

    `layers` lowest first; the upper and work dirs are on the sandbox's own tmpfs, or in `upper_dir`
    on disk when its writes must outlive it. `userns`: a private uid range (the task's root is an
    unprivileged host uid); `caps` what it keeps, every set included. `limits` None: no cgroup of its
    own (a stack build), else one named after `sandbox_id` under `cgroup_parent`. `task_files`: the
    task's own /etc/hosts, /etc/hostname (and resolv.conf with a network). `binds` are mounted after
    those and before `volumes`. `rootfs`: a directory that is the root itself (an OCI bundle's, written to
    in place) instead of an overlay of `layers`; `read_only`: the root is mounted read-only;
    `groups`: the task's supplementary groups (none by default). `joined`: namespaces entered by path
    instead of made (an OCI container's network, ipc or uts: a Kubernetes pod's, `docker run --network
    container:X`), by kind; with uts joined, the hostname is the namespace's. `masked_paths`,
    `read_only_paths`: masked and read-only beyond the sandbox's own (mounts.MASKED_*, READ_ONLY), after
    the volumes. `rlimits`: (RLIMIT_NAME, soft, hard) its pid 1 starts with (inherited by the task)."""

    __slots__ = (
        "argv",
        "binds",
        "caps",
        "cgroup_parent",
        "cwd",
        "disk",
        "env",
        "groups",
        "hostname",
        "joined",
        "layers",
        "limits",
        "masked_paths",
        "network",
        "read_only",
        "read_only_paths",
        "rlimits",
        "rootfs",
        "sandbox_id",
        "seccomp",
        "task_files",
        "upper_dir",
        "user",
        "userns",
        "volumes",
    )
    sandbox_id: str
    layers: Sequence[str]
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str
    hostname: str
    user: tuple[int, int]
    caps: frozenset[str]
    seccomp: str
    userns: bool
    network: NetworkSpec
    limits: Limits | None
    cgroup_parent: str | None
    upper_dir: str | None
    disk: int | None
    volumes: Sequence[PlannedVolume]
    binds: Sequence[mounts.MountStep]
    task_files: bool
    rootfs: str | None
    read_only: bool
    groups: Sequence[int]
    joined: Mapping[str, str]
    masked_paths: Sequence[str]
    read_only_paths: Sequence[str]
    rlimits: Sequence[tuple[str, int, int]]

    def __init__(
        self,
        sandbox_id: str,
        layers: Sequence[str],
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        hostname: str,
        network: NetworkSpec,
        caps: frozenset[str],
        seccomp: str,
        user: tuple[int, int] = (0, 0),
        userns: bool = False,
        limits: Limits | None = None,
        cgroup_parent: str | None = None,
        upper_dir: str | None = None,
        disk: int | None = None,
        volumes: Sequence[PlannedVolume] = (),
        binds: Sequence[mounts.MountStep] = (),
        task_files: bool = True,
        rootfs: str | None = None,
        read_only: bool = False,
        groups: Sequence[int] = (),
        joined: Mapping[str, str] | None = None,
        masked_paths: Sequence[str] = (),
        read_only_paths: Sequence[str] = (),
        rlimits: Sequence[tuple[str, int, int]] = (),
    ) -> None:
        super().__init__(
            sandbox_id=sandbox_id,
            layers=layers,
            argv=argv,
            env=env,
            cwd=cwd,
            hostname=hostname,
            network=network,
            seccomp=seccomp,
            user=user,
            caps=caps,
            userns=userns,
            limits=limits,
            cgroup_parent=cgroup_parent,
            upper_dir=upper_dir,
            disk=disk,
            volumes=volumes,
            binds=binds,
            task_files=task_files,
            rootfs=rootfs,
            read_only=read_only,
            groups=groups,
            joined=joined or {},
            masked_paths=masked_paths,
            read_only_paths=read_only_paths,
            rlimits=rlimits,
        )


class Sandbox:
    """A started sandbox: its pid 1, when it was spawned (time.monotonic()), its cgroup (None without
    limits), and what its network said."""

    def __init__(
        self,
        process: helper.SandboxProcess,
        started: float,
        cgroup: TaskCgroup | None,
        notices: tuple[str, ...],
        address: str | None,
    ) -> None:
        self.process = process
        self.started = started
        self.cgroup = cgroup
        self.notices = notices
        self.address = address


@contextlib.contextmanager
def kept_upper(layout: Layout, task_id: str) -> Iterator[str]:
    """Upper and work dirs on disk for a task whose writes are kept; the work dir is overlayfs's own and
    goes afterwards. (The first stage hands the upper dir to the task's root, as it does the tmpfs one.)"""
    kept = layout.kept_task(task_id)
    with host_errors("kept upper dir", path=kept):
        os.makedirs(f"{kept}/upper", mode=0o755)
        os.mkdir(f"{kept}/work", mode=0o700)
    try:
        yield kept
    finally:
        import shutil  # only tasks that keep their writes pay for it (~1 ms)

        shutil.rmtree(f"{kept}/work", ignore_errors=True)


@contextlib.contextmanager
def _cgroup_entry(cgroup: TaskCgroup | None) -> Iterator[tuple[list[int], int]]:
    """How the child enters its cgroup: (the files it writes "0" to, -1), or on v2 ([], the
    directory it is cloned into). Opened here, closed once it started."""
    fds: list[int] = []
    try:
        with host_errors("join cgroup"):
            entry = _open_cgroup_entry(cgroup, fds)
        yield entry
    finally:
        for fd in fds:
            os.close(fd)


def _open_cgroup_entry(cgroup: TaskCgroup | None, fds: list[int]) -> tuple[list[int], int]:
    """Opens into `fds` (which the caller closes) and returns the entry."""
    directory = cgroup.birth_dir() if cgroup is not None and helper.CAN_CLONE_INTO_CGROUP else None
    if directory is not None:
        fds.append(os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        return [], fds[0]
    for path in cgroup.join_files() if cgroup is not None else ():
        fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
    return fds, -1


class Composer:
    """Starts sandboxes on one state root. Keeps what is worth keeping between them: the detected cgroup
    hierarchy, the uid pool, compiled seccomp filters. Safe to share between threads. `spawn` starts
    the request (the helper; tests pass a fake)."""

    def __init__(
        self,
        layout: Layout,
        cgroups: CgroupManager | None = None,
        id_pool: IdPool | None = None,
        spawn: Spawn = helper.spawn,
    ) -> None:
        self.layout = layout
        self._spawn = spawn
        self._cgroups = cgroups
        self._id_pool = id_pool
        self._next_range = int.from_bytes(os.urandom(2), "little")  # spreads runners over the pool
        self.seccomp = Compiler(layout.seccomp_cache)
        self._step_tables: dict[tuple[object, ...], tuple[list[mounts.MountStep], helper.StepTable]] = {}
        self._host_tables: dict[tuple[object, ...], helper.StepTable] = {}

    @property
    def cgroups(self) -> CgroupManager:
        if self._cgroups is None:
            from lxrun.cgroups import detect

            self._cgroups = detect()
        return self._cgroups

    @property
    def id_pool(self) -> IdPool:
        if self._id_pool is None:
            self._id_pool = load_pool()
        return self._id_pool

    def start(
        self,
        plan: SandboxPlan,
        stdio: tuple[int, int, int],
        resources: contextlib.ExitStack,
        task_fd: int = -1,
        detached: bool = False,
    ) -> Sandbox:
        """Acquire what `plan` needs into `resources` and start its pid 1 on the `stdio` descriptors
        (the state root's directories exist: Layout.ensure). With `task_fd` (a socket), prepare it:
        pid 1 waits there for its task (helper.hand_task), and `plan.argv` is not used. `detached`:
        pid 1 outlives this process (an OCI container; its resources are then the caller's to hand on)."""
        ids = None
        if plan.userns:
            self._next_range += 1
            ids = resources.enter_context(take_range(self.layout, self.id_pool, self._next_range)).range
        faults.point("uid-range")
        netns_fd: int = -1
        notices: tuple[str, ...] = ()
        address: str | None = None
        if plan.network.mode == BRIDGE:
            from lxrun.net.attach import task_network  # pyroute2 & co. load only for bridge tasks

            attachment = resources.enter_context(task_network(self.layout, plan.sandbox_id, plan.network))
            netns_fd, notices, address = attachment.netns_fd or -1, attachment.notices, attachment.address
        joined = {kind: _open_namespace(path, resources) for kind, path in plan.joined.items()}
        if "network" in joined:
            netns_fd = joined.pop("network")
        faults.point("network")
        cgroup = None
        if plan.limits is not None:
            cgroup = resources.enter_context(
                self.cgroups.create(task_cgroup_name(plan.sandbox_id), plan.limits, plan.cgroup_parent)
            )
        faults.point("cgroup")
        with _cgroup_entry(cgroup) as cgroup_entry:
            request = self._request(plan, stdio, cgroup, ids, cgroup_entry, netns_fd, address, joined)
            if task_fd >= 0:
                request = request.replace(argv=(), task_fd=task_fd, detached=detached)
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
            started = time.monotonic()
            try:
                process = resources.enter_context(self._spawn(request))
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return Sandbox(process, started, cgroup, tuple(notices), address)

    def _request(
        self,
        plan: SandboxPlan,
        stdio: tuple[int, int, int],
        cgroup: TaskCgroup | None,
        ids: IdRange | None,
        cgroup_entry: tuple[list[int], int],
        netns_fd: int,
        address: str | None,
        joined: Mapping[str, int],
    ) -> helper.SpawnRequest:
        join_fds, cgroup_dir_fd = cgroup_entry
        root_owner = mounts.TASK_ROOT if ids else None
        scratch = self.layout.scratch
        files = etc_files(plan.hostname, plan.network.mode, address) if plan.task_files else {}
        files_host_steps, files_binds = mounts.etc_file_steps(scratch, files, root_owner)
        view = cgroup.view() if cgroup is not None else None
        view_key = view.key() if view is not None else None
        cgroup_host_steps, shared = self._shared_steps(scratch, plan.disk, view, view_key)
        host_steps, shared_host = self._host_steps(plan, scratch, root_owner, cgroup_host_steps, view_key)
        steps = [*shared.steps, *files_binds, *plan.binds]
        volumes_host_steps, volume_moves = mounts.volume_steps(plan.volumes, scratch, ids is not None)
        steps += volume_moves
        if plan.masked_paths or plan.read_only_paths:
            steps += mounts.extra_mask_steps(scratch, plan.masked_paths, plan.read_only_paths, plan.rootfs)
        steps.append(mounts.workdir_step(plan.cwd))
        steps += [mounts.READ_ONLY_ROOT, mounts.PIVOT] if plan.read_only else [mounts.PIVOT]
        return helper.SpawnRequest(
            namespaces=(NAMESPACES | {"user"} if ids else NAMESPACES) - set(joined),
            host_steps=[*host_steps, *files_host_steps, *volumes_host_steps],
            steps=steps,
            argv=plan.argv,
            env=plan.env,
            cwd=plan.cwd,
            hostname=None if "uts" in joined else plan.hostname,
            stdin_fd=stdio[0],
            stdout_fd=stdio[1],
            stderr_fd=stdio[2],
            network="join" if "network" in plan.joined else HELPER_NETWORK[plan.network.mode],
            netns_fd=netns_fd,
            uid_map=ids.uid_map() if ids else None,
            gid_map=ids.gid_map() if ids else None,
            uid=plan.user[0],
            gid=plan.user[1],
            groups=plan.groups,
            caps=plan.caps,
            seccomp=self.seccomp.filter_for(plan.seccomp, plan.caps),
            cgroup_join_fds=join_fds,
            cgroup_dir_fd=cgroup_dir_fd,
            new_cgroupns=bool(join_fds) or cgroup_dir_fd >= 0,
            shared_steps=shared,
            joined=[(fd, kind) for kind, fd in joined.items()],
            rlimits=plan.rlimits,
            shared_host_steps=shared_host,
            root_owner=ids.uid if ids else None,
        )

    def _host_steps(
        self,
        plan: SandboxPlan,
        scratch: str,
        root_owner: int | None,
        cgroup_host_steps: list[mounts.MountStep],
        view_key: tuple[object, ...] | None,
    ) -> tuple[Sequence[mounts.MountStep], helper.StepTable | None]:
        """The first stage's steps up to the task's own files: its tmpfs, layers, /dev, overlay root
        and cgroup view. Built (and put in C form) once per kind of sandbox, the task's root standing
        as TASK_ROOT; for each sandbox where one of them is its own path (a kept upper dir, a bundle)."""
        if plan.upper_dir is not None or plan.rootfs is not None:
            steps = mounts.host_steps(plan.layers, scratch, plan.upper_dir, root_owner, plan.disk, plan.rootfs)
            return [*steps, *cgroup_host_steps], None
        key = (tuple(plan.layers), scratch, root_owner, plan.disk, view_key)
        found = self._host_tables.get(key)
        if found is None:
            steps = mounts.host_steps(plan.layers, scratch, None, root_owner, plan.disk)
            found = helper.StepTable([*steps, *cgroup_host_steps])
            if len(self._host_tables) >= STEP_TABLES:
                self._host_tables.clear()  # many stacks or --disk sizes: start over rather than grow
            self._host_tables[key] = found
        return found.steps, found

    def _shared_steps(
        self, scratch: str, disk: int | None, view: CgroupView | None, view_key: tuple[object, ...] | None
    ) -> tuple[list[mounts.MountStep], helper.StepTable]:
        """The first stage's steps for the cgroup view and the second stage's own filesystems, built
        (and put in C form) once per kind of sandbox rather than for each."""
        key = (scratch, disk, view_key)
        found = self._step_tables.get(key)
        if found is None:
            host, cgroup_steps = mounts.cgroup_steps(scratch, view) if view is not None else ([], [])
            found = host, helper.StepTable(mounts.sandbox_steps(scratch, disk, cgroup_steps))
            if len(self._step_tables) >= STEP_TABLES:
                self._step_tables.clear()  # many --disk sizes: start over rather than grow
            self._step_tables[key] = found
        return found


def _open_namespace(path: str, resources: contextlib.ExitStack) -> int:
    """A namespace to join, open until the sandbox is spawned (the helper enters it by descriptor)."""
    with host_errors("join namespace", path=path):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    resources.callback(os.close, fd)
    return fd
