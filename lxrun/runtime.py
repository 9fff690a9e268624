"""The public Python API: `run(TaskSpec(...)) -> Result`. Safe to call from many threads at once.

A Runtime is a state root with its backends, which keep what is worth keeping between tasks (the
detected cgroup hierarchy, the uid pool, compiled seccomp filters). `run()` uses one Runtime per
state root, made on first use; a runner host may also make its own.
"""

from __future__ import annotations

import os

from lxrun.errors import SpecError
from lxrun.layout import Layout, default_root
from lxrun.plan import plan_task
from lxrun.store.stacks import StackStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.backends.base import Backend, OnStart
    from lxrun.result import Result
    from lxrun.spec import TaskSpec

# name -> "module:class", imported on first use: a backend's own dependencies cost only its users.
BACKENDS = {
    "native": "lxrun.backends.native:NativeBackend",
    "lxc": "lxrun.backends.lxc:LxcBackend",
    "docker": "lxrun.backends.docker:DockerBackend",
}


class Runtime:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.layout = Layout(root if root is not None else default_root())
        self.stacks = StackStore(self.layout)
        self._backends: dict[str, Backend] = {}

    def backend(self, name: str) -> Backend:
        found = self._backends.get(name)
        if found is None:
            if name not in BACKENDS:
                raise SpecError("backend", "unknown", path=name, hint=f"use one of {', '.join(BACKENDS)}")
            module, _, attribute = BACKENDS[name].partition(":")
            # Two threads may both make one here; either is fine, the dict keeps one.
            # __import__ with a fromlist returns the module itself, without loading importlib (~0.4 ms).
            loaded = __import__(module, fromlist=[attribute])
            found = self._backends.setdefault(name, getattr(loaded, attribute)(self.layout))
        return found

    def run(self, spec: TaskSpec, *, backend: str = "native", on_start: OnStart | None = None) -> Result:
        """Run one task to its end; `on_start` gets a handle (task_id, send_signal) once it runs."""
        chosen = self.backend(backend)
        return chosen.run(plan_task(spec, self.stacks.resolve(spec.stack)), on_start=on_start)


_runtimes: dict[str, Runtime] = {}


def runtime_for(root: str | os.PathLike[str] | None = None) -> Runtime:
    """The shared Runtime of a state root (default $LXRUN_ROOT or /var/lib/lxrun)."""
    key = os.path.abspath(os.fspath(root if root is not None else default_root()))
    found = _runtimes.get(key)
    if found is None:
        found = _runtimes.setdefault(key, Runtime(key))
    return found


def run(
    spec: TaskSpec,
    *,
    backend: str = "native",
    root: str | os.PathLike[str] | None = None,
    on_start: OnStart | None = None,
) -> Result:
    """Run one task to its end. `root` is the state root (default $LXRUN_ROOT or /var/lib/lxrun);
    `on_start` is called with a handle (task_id, send_signal) once the task's command runs."""
    return runtime_for(root).run(spec, backend=backend, on_start=on_start)
