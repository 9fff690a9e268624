"""A prepared sandbox: a native sandbox made ahead of its task, whose pid 1 waits for exactly one.

Everything a cold task acquires is acquired when it is prepared (its record, uid range, cgroup,
namespaces, root, mounts), in one ExitStack the sandbox owns; `run` hands pid 1 its task (argv,
environment, stdio over the task socket; limits written to the cgroup, usage counted from then),
supervises it as a cold task is supervised, and releases the lot. A sandbox is used once. What a
crash leaves is a task record like any other: `lxrun gc` releases it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

from lxrun import faults
from lxrun.backends.native import sandbox_plan, supervise
from lxrun.sandbox import helper
from lxrun.sandbox.stdio import TaskStdio
from lxrun.state import claimed_name, task_record

NAMESPACES = ("mnt", "pid", "uts", "ipc", "cgroup", "net", "user")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lxrun.backends.base import OnStart
    from lxrun.backends.native import NativeBackend
    from lxrun.plan import TaskPlan
    from lxrun.result import Result
    from lxrun.sandbox.compose import Sandbox


class PreparedSandbox:
    """`plan` says what every task handed to it shares (stack, user, workdir, security, limits' shape);
    its task id is the sandbox's. Not thread-safe: one owner hands it one task."""

    def __init__(self, backend: NativeBackend, plan: TaskPlan) -> None:
        self.plan = plan
        self._backend = backend
        self._resources = contextlib.ExitStack()
        try:
            self.sandbox, self._socket = self._prepare()
        except BaseException:
            self._resources.close()
            raise

    def _prepare(self) -> tuple[Sandbox, socket.socket]:
        backend, resources = self._backend, self._resources
        backend.layout.ensure()
        self._record = resources.enter_context(task_record(backend.layout, self.plan, backend.name))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        resources.callback(ours.close)
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            sandbox = backend.composer.start(
                sandbox_plan(self.plan, None), (devnull, devnull, devnull), resources, task_fd=theirs.fileno()
            )
        finally:
            theirs.close()
            os.close(devnull)
        self._record.running_as(sandbox.process.pid)
        # Held until the sandbox is released: when its pid 1 exits, the kernel then has no namespace
        # to tear down on the task's path (a mount namespace's end waits for an RCU grace period).
        for kind in NAMESPACES:
            with contextlib.suppress(FileNotFoundError):
                fd = os.open(f"/proc/{sandbox.process.pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
                resources.callback(os.close, fd)
        return sandbox, ours

    def memory(self) -> int:
        """Bytes its cgroup holds while it waits (pid 1, its tmpfs, the kernel's mount structures)."""
        return (self.sandbox.cgroup.current_memory() if self.sandbox.cgroup else None) or 0

    def run(
        self,
        plan: TaskPlan,
        message: bytes,
        on_start: OnStart | None = None,
        release: Callable[[PreparedSandbox], None] | None = None,
    ) -> Result:
        """Run `plan` (planned with this sandbox's task id; its task_message is `message`), then release
        the sandbox whatever happens: with `release` (which must call close, e.g. from another thread,
        so the caller does not wait for it), else here."""
        spec, sandbox = plan.spec, self.sandbox
        assert sandbox.cgroup is not None
        try:
            self._resources.enter_context(claimed_name(self._backend.layout, spec.name, plan.task_id))
            stdio = self._resources.enter_context(TaskStdio(spec))
            faults.point("stdio")
            if not sandbox.cgroup.retune(spec.limits, self.plan.spec.limits):
                raise AssertionError("the pool hands out only tasks whose limits its cgroups can take")
            baseline = sandbox.cgroup.restart_accounting()
            started = time.monotonic()
            helper.hand_task(self._socket, message, (stdio.stdin_fd, stdio.stdout_fd, stdio.stderr_fd))
            self._record.update(command=list(plan.argv), created=time.time())  # while pid 1 starts the command
            if on_start is not None:  # it is called once the command runs
                helper.await_exec(self._socket, plan.env)
            faults.point("spawned")
            outcome = supervise(plan, sandbox, stdio, started, on_start, usage_since=baseline)
            if on_start is None:  # a wake-up saved: whether the command ran is asked once pid 1 has exited
                helper.await_exec(self._socket, plan.env)
        finally:
            (release or PreparedSandbox.close)(self)
        return outcome.result(plan, self._backend.name, sandbox.notices)

    def close(self) -> None:
        """Release it, used or not (unused, its pid 1 sees end-of-file and exits; the cgroup kill makes sure)."""
        self._resources.close()
