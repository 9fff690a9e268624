"""The native backend: our cffi helper, driven from one ExitStack per task.

plan -> acquire (task record, name, stdio, then the composer's uid range, network, cgroup) -> spawn
-> wait (output, timeout) -> collect (status, usage) -> release (kill everything in the cgroup, remove
it, give the range back, close what we opened).
The mounts and the task's tmpfs live in the sandbox's own mount namespace and vanish with it; what
lives on the host is registered in the ExitStack, so it is released on every path.
"""

from __future__ import annotations

import contextlib
import os
import time

from lxrun import faults
from lxrun import signals as signal
from lxrun.backends.leftovers import release_cgroup_task
from lxrun.result import Result
from lxrun.sandbox import helper, mounts
from lxrun.sandbox.compose import Composer, SandboxPlan, kept_upper
from lxrun.sandbox.stdio import TaskStdio
from lxrun.sandbox.supervise import wait
from lxrun.spec import USERNS_PRIVATE
from lxrun.state import claimed_name, task_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from lxrun.backends.base import OnStart, Probe
    from lxrun.cgroups import CgroupManager
    from lxrun.cgroups.base import Usage
    from lxrun.layout import Layout
    from lxrun.plan import TaskPlan
    from lxrun.sandbox.compose import Sandbox, Spawn
    from lxrun.sandbox.userns import IdPool

MIN_KERNEL = (5, 19)  # overlayfs over idmapped layers


class _Handle:
    def __init__(self, task_id: str, process: helper.SandboxProcess, stdio: TaskStdio) -> None:
        self.task_id = task_id
        self._process = process
        self._stdio = stdio

    def send_signal(self, sig: int) -> None:
        """SIGWINCH to a task with a pty means the caller's window changed: the pty takes its size
        (and its kernel tells the task); anything else goes to pid 1, which passes it on."""
        if sig == signal.SIGWINCH and self._stdio.resize():
            return
        self._process.send_signal(sig)


def _kernel_version() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


class NativeBackend:
    name = "native"

    def __init__(
        self,
        layout: Layout,
        cgroups: CgroupManager | None = None,
        id_pool: IdPool | None = None,
        spawn: Spawn = helper.spawn,
    ) -> None:
        self.layout = layout
        self.composer = Composer(layout, cgroups, id_pool, spawn)

    @property
    def cgroups(self) -> CgroupManager:
        return self.composer.cgroups

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

    def refuse(self, plan: TaskPlan) -> None:
        """Native honours every valid spec: the others' refusals name it as the way out."""

    def run(self, plan: TaskPlan, on_start: OnStart | None = None) -> Result:
        spec = plan.spec
        self.layout.ensure()
        with contextlib.ExitStack() as resources:
            record = resources.enter_context(task_record(self.layout, plan, self.name))
            resources.callback(faults.point, "released")  # runs after every release but the record's
            faults.point("record")
            resources.enter_context(claimed_name(self.layout, spec.name, plan.task_id))
            faults.point("name")
            kept = resources.enter_context(kept_upper(self.layout, plan.task_id)) if spec.keep else None
            faults.point("kept")
            stdio = resources.enter_context(TaskStdio(spec))
            faults.point("stdio")
            sandbox = self.composer.start(
                sandbox_plan(plan, kept), (stdio.stdin_fd, stdio.stdout_fd, stdio.stderr_fd), resources
            )
            record.running_as(sandbox.process.pid)
            faults.point("spawned")
            outcome = supervise(plan, sandbox, stdio, sandbox.started, on_start)
        return outcome.result(plan, self.name, sandbox.notices, upper_dir=f"{kept}/upper" if kept else None)

    def release_leftovers(self, task_id: str, record_data: Mapping[str, Any] | None, dry_run: bool) -> list[str]:
        """The task's cgroup (killing what is left in it), then what every backend's task leaves."""
        return release_cgroup_task(self.layout, self.cgroups, task_id, record_data, dry_run)


class Outcome:
    """What a task's supervision collected, before its sandbox is released."""

    def __init__(
        self,
        status: int,
        timed_out: bool,
        wall_time: float,
        usage: Usage,
        output: Mapping[str, bytes | None],
        truncated: bool,
    ) -> None:
        self.status, self.timed_out, self.wall_time = status, timed_out, wall_time
        self.usage, self.output, self.truncated = usage, output, truncated

    def result(self, plan: TaskPlan, backend: str, notices: tuple[str, ...], upper_dir: str | None = None) -> Result:
        return Result.from_wait_status(
            self.status,
            self.usage,
            task_id=plan.task_id,
            name=plan.spec.name,
            stack=plan.stack.ref,
            backend=backend,
            wall_time=self.wall_time,
            stdout=self.output.get("stdout"),
            stderr=self.output.get("stderr"),
            upper_dir=upper_dir,
            timed_out=self.timed_out,
            output_truncated=self.truncated,
            notices=notices,
        )


def supervise(
    plan: TaskPlan,
    sandbox: Sandbox,
    stdio: TaskStdio,
    started: float,
    on_start: OnStart | None,
    usage_since: Usage | None = None,
) -> Outcome:
    """A running task (cold or handed to a prepared sandbox, `started` then) to its end: on_start, the
    wait with its timeout, then its usage (less `usage_since`, what setup counted) and output."""
    spec, process, cgroup = plan.spec, sandbox.process, sandbox.cgroup
    assert cgroup is not None  # a task always has limits, if only the defaults
    stdio.close_child_ends()
    if on_start is not None:
        on_start(_Handle(plan.task_id, process, stdio))
    faults.point("running")
    status, timed_out = wait(process, stdio.relay, started, spec.timeout, spec.stop_timeout, kill_all=cgroup.kill_all)
    wall_time = time.monotonic() - started
    usage = cgroup.usage()
    if usage_since is not None:
        usage = usage.since(usage_since)
    output, truncated = stdio.finish()
    faults.point("collected")
    return Outcome(status, timed_out, wall_time, usage, output, truncated)


def sandbox_plan(plan: TaskPlan, kept: str | None) -> SandboxPlan:
    """The sandbox a task plan runs in: its writes on its own tmpfs, or in `kept` on disk."""
    spec = plan.spec
    return SandboxPlan(
        sandbox_id=plan.task_id,
        layers=plan.stack.layer_paths,
        argv=plan.argv,
        env=plan.env,
        cwd=plan.workdir,
        hostname=plan.hostname,
        network=spec.network,
        caps=spec.security.caps,
        seccomp=spec.security.seccomp,
        user=plan.user,
        userns=spec.security.userns == USERNS_PRIVATE,
        limits=spec.limits,
        cgroup_parent=spec.cgroup_parent,
        upper_dir=kept,
        disk=spec.disk,
        volumes=plan.volumes,
    )
