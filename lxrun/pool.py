"""lxrun.Pool: sandboxes prepared ahead of demand for one stack and isolation profile, so that a
task's start is only the hand-over to a pid 1 that is already waiting (see backends/prepared.py).

    with lxrun.Pool("python3.11", size=4) as pool:
        result = pool.run(lxrun.TaskSpec(stack="python3.11", argv=["python3", "-c", "print(1)"]))

Each sandbox is handed exactly one task and torn down after it; a filler thread keeps `size` ready,
within `memory_budget` (bytes their cgroups hold while they wait). A task the pool can't serve
(another stack or version of it, another profile, a network, volumes, a terminal, a name or hostname
of its own, limits of another kind) runs cold through the same Runtime, with a notice in its
Result saying why; so does a task that finds none ready. Safe to call from many threads.
"""

from __future__ import annotations

import threading
from collections import deque

from lxrun.backends.prepared import PreparedSandbox
from lxrun.errors import SpecError, api_edge
from lxrun.plan import plan_task
from lxrun.runtime import Runtime
from lxrun.sandbox import helper
from lxrun.spec import DEFAULT_SECURITY, NO_LIMITS, TaskSpec, check_stack_ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from types import TracebackType

    from lxrun.backends.base import OnStart
    from lxrun.backends.native import NativeBackend
    from lxrun.plan import TaskPlan
    from lxrun.result import Result
    from lxrun.spec import Limits, Security
    from lxrun.store.stacks import ResolvedStack

RETRY_AFTER = 0.5  # seconds before the filler tries again after failing to prepare a sandbox
# Fields a task must leave as the pool's template has them to be served warm, and what to say if not.
SAME_AS_TEMPLATE = {
    "security": "another isolation profile (security)",
    "network": "a network",
    "volumes": "volumes",
    "tty": "a terminal",
    "keep": "keep",
    "workdir": "another working directory",
    "cgroup_parent": "a cgroup parent",
    "disk": "another disk size",
    "name": "a name (its hostname)",
    "hostname": "a hostname",
}


class Pool:
    """`size` sandboxes kept ready for tasks like `template`: a stack name (then `security` and `limits`
    give the profile), or a TaskSpec whose sandbox-shaping fields (stack, security, limits, network,
    volumes, workdir, name, hostname, disk, cgroup parent) every task it serves shares; its command,
    environment, stdio and timeouts are each task's own. A task's limits are written to its cgroup when
    it is handed out, if they set the same bounds as the template's."""

    def __init__(
        self,
        template: str | TaskSpec,
        size: int = 4,
        *,
        security: Security | None = None,
        limits: Limits | None = None,
        memory_budget: int | None = None,
        root: str | os.PathLike[str] | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if size < 1:
            raise SpecError("size", "must be at least 1", path=str(size))
        if isinstance(template, str):
            template = TaskSpec(
                stack=template, argv=["true"], security=security or DEFAULT_SECURITY, limits=limits or NO_LIMITS
            )
        elif security is not None or limits is not None:
            raise SpecError("security", "give the profile in the template", hint="TaskSpec(security=..., limits=...)")
        if template.keep:
            raise SpecError("keep", "a pool's sandboxes are thrown away", hint="run tasks that keep their writes cold")
        self.runtime = runtime or Runtime(root)
        self.size = size
        self.memory_budget = memory_budget
        # Its argv is a stand-in: a sandbox's pid 1 waits for the command each task brings.
        self._template = self.runtime.with_defaults(template.replace(argv=["true"], entrypoint=None))
        self._backend: NativeBackend = self.runtime.backend("native")  # type: ignore[assignment]
        self._stack: ResolvedStack = self.runtime.stacks.resolve(template.stack)
        plan_task(self._template, self._stack)  # a template no task could run on fails here, not in the filler
        self._ready: deque[PreparedSandbox] = deque()
        self._used: deque[PreparedSandbox] = deque()  # handed out and done: to be released
        self._changed = threading.Condition()
        self._closing = False
        self._running = 0
        self.failure: Exception | None = None  # the last reason the filler could not prepare one
        self._filler = threading.Thread(target=self._fill, name=f"lxrun-pool-{template.stack}", daemon=True)
        self._filler.start()

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def ready(self) -> int:
        return len(self._ready)

    def wait_ready(self, count: int | None = None, timeout: float = 30.0) -> bool:
        """Wait until `count` (default: size) sandboxes are ready; False if `timeout` passed first or
        preparing one failed (`failure` says why)."""
        wanted = self.size if count is None else count
        with self._changed:
            self._changed.wait_for(lambda: len(self._ready) >= wanted or self._closing or self.failure, timeout)
            return len(self._ready) >= wanted

    @api_edge("task")
    def run(self, spec: TaskSpec, *, on_start: OnStart | None = None) -> Result:
        """Run one task, warm where the pool can serve it, else cold (Result.notices says why)."""
        given, spec = spec, self.runtime.with_defaults(spec)  # a cold run applies the defaults itself
        reason = self._refusal(spec)
        sandbox = None
        if reason is None:
            sandbox = self._take()
            reason = "no sandbox was ready" if sandbox is None else None
        if sandbox is None:
            return self._cold(given, on_start, reason or "")
        try:
            plan = plan_task(spec, self._stack, task_id=sandbox.plan.task_id)
            message = helper.task_message(plan.argv, plan.env)
            reason = self._plan_refusal(plan, sandbox.plan, message)
        except BaseException:
            self._give_back(sandbox)
            raise
        if reason is not None or message is None:
            self._give_back(sandbox)
            return self._cold(given, on_start, reason or "")
        return sandbox.run(plan, message, on_start, release=self._release_later)

    def close(self) -> None:
        """Stop refilling, wait for the tasks running in the pool's sandboxes, release every sandbox."""
        with self._changed:
            self._changed.wait_for(lambda: self._running == 0)
            self._closing = True
            self._changed.notify_all()
        self._filler.join()  # it releases what is left: pid 1s die with the thread that made them

    def _refusal(self, spec: TaskSpec) -> str | None:
        """Why the pool can't serve `spec`, from the spec alone; None if it may."""
        if spec.stack != self._template.stack:
            return "another stack"
        for field, reason in SAME_AS_TEMPLATE.items():
            if getattr(spec, field) != getattr(self._template, field):
                return reason
        if _bounds(spec.limits) != _bounds(self._template.limits):
            return "limits of another kind (a bound set that the pool's sandboxes don't have, or the reverse)"
        if self._current_ref(spec.stack) != self._stack.ref:
            return "the stack changed version since the pool was made"
        return None

    def _current_ref(self, ref: str) -> str:
        """NAME@VERSION that `ref` means now: one readlink for a bare name (the pool's sandboxes
        already hold its layers, so resolving them again per task would find nothing new)."""
        name, version = check_stack_ref(ref)
        return f"{name}@{version or self.runtime.stacks.current_version(name)}"

    @staticmethod
    def _plan_refusal(plan: TaskPlan, prepared: TaskPlan, message: bytes | None) -> str | None:
        if plan.user != prepared.user:
            return "another user"
        if plan.workdir != prepared.workdir:
            return "another working directory"
        if message is None:
            return "more arguments and environment than a hand-over carries"
        return None

    def _cold(self, spec: TaskSpec, on_start: OnStart | None, reason: str) -> Result:
        result = self.runtime.run(spec, on_start=on_start)
        return result.replace(notices=(*result.notices, f"pool: ran cold: {reason}"))

    def _take(self) -> PreparedSandbox | None:
        with self._changed:
            if self._closing or not self._ready:
                return None
            self._running += 1
            sandbox = self._ready.popleft()
            if not self._ready:
                self._changed.notify_all()  # the filler makes another now (see _work_to_do)
            return sandbox

    def _release_later(self, sandbox: PreparedSandbox) -> None:
        """A used sandbox goes to the filler thread to be released, off the caller's path."""
        with self._changed:
            self._running -= 1
            self._used.append(sandbox)
            self._changed.notify_all()

    def _give_back(self, sandbox: PreparedSandbox) -> None:
        with self._changed:
            self._running -= 1
            self._ready.appendleft(sandbox)
            self._changed.notify_all()

    def _work_to_do(self) -> bool:
        """Whether the filler should work now. While tasks run it holds back, unless used sandboxes pile
        up or none is ready: its work would compete with theirs for the CPU, and its Python for the GIL
        (a caller woken at its task's end would wait for the filler's next blocking call)."""
        quiet = self._running == 0
        if self._used and (quiet or len(self._used) >= self.size):
            return True
        return self._room() and (quiet or not self._ready)

    def _room(self) -> bool:
        if len(self._ready) >= self.size:
            return False
        if self.memory_budget is None or not self._ready:
            return True
        held = sum(sandbox.memory() for sandbox in self._ready)
        return held + held // len(self._ready) <= self.memory_budget

    def _fill(self) -> None:
        """The filler thread: release used sandboxes first, then prepare new ones while there is room;
        at close, release them all. It lives as long as the pool: a pid 1 dies with the thread that
        made it (PR_SET_PDEATHSIG)."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closing or self._work_to_do())
                closing = self._closing  # as seen with the ready ones taken: set later, it finds them still here
                done = list(self._used)
                self._used.clear()
                if closing:
                    done += self._ready
                    self._ready.clear()
            for sandbox in done:
                sandbox.close()
            if closing:
                return
            if done:
                continue
            try:
                sandbox = PreparedSandbox(self._backend, plan_task(self._template, self._stack))
            except Exception as exc:  # kept for the caller to see; the filler must live on
                with self._changed:
                    self.failure = exc
                    self._changed.notify_all()
                    self._changed.wait_for(lambda: self._closing, RETRY_AFTER)
                continue
            with self._changed:
                self.failure = None
                self._ready.append(sandbox)
                self._changed.notify_all()


def _bounds(limits: Limits) -> tuple[bool, ...]:
    """Which bounds are set: the files a cgroup has (values can change at hand-out, not the files)."""
    return tuple(getattr(limits, field) is not None for field in limits.fields())
