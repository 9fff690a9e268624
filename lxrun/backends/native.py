"""The native backend: our cffi helper, driven from one ExitStack per task.

plan -> acquire (task record, uid range, kept dirs, stdio, cgroup) -> spawn -> wait (output, timeout)
-> collect (status, usage) -> release (kill everything in the cgroup, remove it, give the range
back, close what we opened).
The mounts and the task's tmpfs live in the sandbox's own mount namespace and vanish with it; what
lives on the host is registered in the ExitStack, so it is released on every path.
"""

from __future__ import annotations

import contextlib
import os
import time

from lxrun import faults
from lxrun.cgroups import detect
from lxrun.net.etc import etc_files
from lxrun.net.spec import BRIDGE, HOST, NONE
from lxrun.result import Result
from lxrun.sandbox import helper, mounts
from lxrun.sandbox.seccomp import Compiler
from lxrun.sandbox.stdio import TaskStdio
from lxrun.sandbox.supervise import wait
from lxrun.sandbox.userns import IdPool, load_pool, take_range
from lxrun.spec import USERNS_PRIVATE
from lxrun.state import claimed_name, task_cgroup_name, task_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxrun.backends.base import OnStart, Probe
    from lxrun.cgroups import CgroupManager, TaskCgroup
    from lxrun.layout import Layout
    from lxrun.plan import TaskPlan
    from lxrun.sandbox.userns import IdRange

NAMESPACES = frozenset({"mount", "pid", "uts", "ipc"})
# The task's network as the helper's first stage takes it: a namespace of its own, the bridge's, the host's.
HELPER_NETWORK = {NONE: "new", BRIDGE: "join", HOST: "host"}
MIN_KERNEL = (5, 19)  # overlayfs over idmapped layers


class _Handle:
    def __init__(self, task_id: str, process: helper.SandboxProcess) -> None:
        self.task_id = task_id
        self._process = process

    def send_signal(self, sig: int) -> None:
        self._process.send_signal(sig)


def _kernel_version() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


@contextlib.contextmanager
def _kept_upper(layout: Layout, task_id: str) -> Iterator[str]:
    """Upper and work dirs on disk for --keep; the work dir is overlayfs's own and goes afterwards.
    (The first stage hands the upper dir to the task's root, as it does the tmpfs one.)"""
    kept = layout.kept_task(task_id)
    os.makedirs(f"{kept}/upper", mode=0o755)
    os.mkdir(f"{kept}/work", mode=0o700)
    try:
        yield kept
    finally:
        import shutil

        shutil.rmtree(f"{kept}/work", ignore_errors=True)


@contextlib.contextmanager
def _cgroup_entry(cgroup: TaskCgroup) -> Iterator[tuple[list[int], int]]:
    """How the child enters its cgroup: (the files it writes "0" to, -1), or on v2 ([], the
    directory it is cloned into). Opened here, closed once it started."""
    fds: list[int] = []
    try:
        directory = cgroup.birth_dir() if helper.CAN_CLONE_INTO_CGROUP else None
        if directory is not None:
            fds.append(os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            yield [], fds[0]
        else:
            for path in cgroup.join_files():
                fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
            yield fds, -1
    finally:
        for fd in fds:
            os.close(fd)


class NativeBackend:
    name = "native"

    def __init__(self, layout: Layout, cgroups: CgroupManager | None = None, id_pool: IdPool | None = None) -> None:
        self.layout = layout
        self._cgroups = cgroups
        self._id_pool = id_pool
        self._next_range = int.from_bytes(os.urandom(2), "little")  # spreads runners over the pool
        self.seccomp = Compiler(layout.seccomp_cache)

    @property
    def cgroups(self) -> CgroupManager:
        if self._cgroups is None:
            self._cgroups = detect()
        return self._cgroups

    @property
    def id_pool(self) -> IdPool:
        if self._id_pool is None:
            self._id_pool = load_pool()
        return self._id_pool

    def probe(self) -> Probe:
        from lxrun.backends.base import Probe

        if os.geteuid() != 0:
            return Probe(False, "needs root (run as root)")
        if _kernel_version() < MIN_KERNEL:
            return Probe(False, f"needs Linux >= {MIN_KERNEL[0]}.{MIN_KERNEL[1]}, this is {os.uname().release}")
        if not mounts.overlayfs_available():
            return Probe(False, "overlayfs is not available (build or install the overlay module)")
        if not os.path.isfile(helper.INIT_PATH):
            return Probe(False, f"{helper.INIT_PATH} is not built (pip install -e .)")
        return Probe(True, f"ok (cgroup {self.cgroups.version})")

    def run(self, plan: TaskPlan, on_start: OnStart | None = None) -> Result:
        spec = plan.spec
        self.layout.ensure()
        dev_template = mounts.ensure_dev_template(self.layout)
        with contextlib.ExitStack() as resources:
            record = resources.enter_context(task_record(self.layout, plan, self.name))
            resources.callback(faults.point, "released")  # runs after every release but the record's
            faults.point("record")
            resources.enter_context(claimed_name(self.layout, spec.name, plan.task_id))
            faults.point("name")
            ids = None
            if spec.security.userns == USERNS_PRIVATE:
                self._next_range += 1
                ids = resources.enter_context(take_range(self.layout, self.id_pool, self._next_range)).range
            faults.point("uid-range")
            netns_fd: int = -1
            notices: tuple[str, ...] = ()
            address: str | None = None
            if spec.network.mode == BRIDGE:
                from lxrun.net.attach import task_network  # pyroute2 & co. load only for bridge tasks

                attachment = resources.enter_context(task_network(self.layout, plan.task_id, spec.network))
                netns_fd, notices, address = attachment.netns_fd or -1, attachment.notices, attachment.address
            faults.point("network")
            kept = resources.enter_context(_kept_upper(self.layout, plan.task_id)) if spec.keep else None
            faults.point("kept")
            stdio = resources.enter_context(TaskStdio(spec))
            faults.point("stdio")
            cgroup: TaskCgroup = resources.enter_context(
                self.cgroups.create(task_cgroup_name(plan.task_id), spec.limits, spec.cgroup_parent)
            )
            faults.point("cgroup")
            with _cgroup_entry(cgroup) as cgroup_entry:
                etc = etc_files(plan.hostname, spec.network.mode, address)
                request = self._request(plan, dev_template, stdio, ids, kept, cgroup_entry, netns_fd, etc)
                started = time.monotonic()
                process = resources.enter_context(helper.spawn(request))
            record.running_as(process.pid)
            faults.point("spawned")
            stdio.close_child_ends()
            if on_start is not None:
                on_start(_Handle(plan.task_id, process))
            faults.point("running")
            status, timed_out = wait(
                process, stdio.sinks, started, spec.timeout, spec.stop_timeout, kill_all=cgroup.kill_all
            )
            wall_time = time.monotonic() - started
            usage = cgroup.usage()
            output, truncated = stdio.finish()
            faults.point("collected")
        return Result.from_wait_status(
            status,
            usage,
            task_id=plan.task_id,
            name=spec.name,
            stack=plan.stack.ref,
            backend=self.name,
            wall_time=wall_time,
            stdout=output.get("stdout"),
            stderr=output.get("stderr"),
            upper_dir=f"{kept}/upper" if kept else None,
            timed_out=timed_out,
            output_truncated=truncated,
            notices=tuple(notices),
        )

    def _request(
        self,
        plan: TaskPlan,
        dev_template: str,
        stdio: TaskStdio,
        ids: IdRange | None,
        kept: str | None,
        cgroup_entry: tuple[list[int], int],
        netns_fd: int,
        etc: dict[str, str],
    ) -> helper.SpawnRequest:
        spec = plan.spec
        join_fds, cgroup_dir_fd = cgroup_entry
        caps = spec.security.caps
        root_owner = ids.uid if ids else None
        etc_host_steps, etc_binds = mounts.etc_file_steps(self.layout.scratch, etc, root_owner)
        return helper.SpawnRequest(
            namespaces=NAMESPACES | {"user"} if ids else NAMESPACES,
            host_steps=[
                *mounts.host_steps(plan.stack.layer_paths, self.layout.scratch, kept, root_owner, spec.disk),
                *etc_host_steps,
            ],
            steps=self._sandbox_steps(plan, dev_template, etc_binds),
            argv=spec.argv,
            env=plan.env,
            cwd=plan.workdir,
            hostname=plan.hostname,
            stdin_fd=stdio.stdin_fd,
            stdout_fd=stdio.stdout_fd,
            stderr_fd=stdio.stderr_fd,
            network=HELPER_NETWORK[spec.network.mode],
            netns_fd=netns_fd,
            uid_map=ids.uid_map() if ids else None,
            gid_map=ids.gid_map() if ids else None,
            uid=plan.user[0],
            gid=plan.user[1],
            caps=caps,
            seccomp=self.seccomp.filter_for(spec.security.seccomp, caps),
            cgroup_join_fds=join_fds,
            cgroup_dir_fd=cgroup_dir_fd,
            new_cgroupns=bool(join_fds) or cgroup_dir_fd >= 0,
        )

    def _sandbox_steps(
        self, plan: TaskPlan, dev_template: str, etc_binds: list[mounts.MountStep]
    ) -> list[mounts.MountStep]:
        steps = mounts.sandbox_steps(self.layout.scratch, dev_template, plan.spec.disk) + etc_binds
        steps += [mounts.volume_step(v.volume, v.is_dir) for v in plan.volumes]
        steps += [mounts.workdir_step(plan.workdir), mounts.PIVOT]
        return steps
