"""The public Python API: `run(TaskSpec(...)) -> Result`. Safe to call from many threads at once."""

from __future__ import annotations

import importlib
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


def get_backend(name: str, layout: Layout) -> Backend:
    if name not in BACKENDS:
        raise SpecError("backend", "unknown", path=name, hint=f"use one of {', '.join(BACKENDS)}")
    module, _, attribute = BACKENDS[name].partition(":")
    backend: Backend = getattr(importlib.import_module(module), attribute)(layout)
    return backend


def run(
    spec: TaskSpec,
    *,
    backend: str = "native",
    root: str | os.PathLike[str] | None = None,
    on_start: OnStart | None = None,
) -> Result:
    """Run one task to its end. `root` is the state root (default $LXRUN_ROOT or /var/lib/lxrun);
    `on_start` is called with a handle (task_id, send_signal) once the task's command runs."""
    layout = Layout(root if root is not None else default_root())
    chosen = get_backend(backend, layout)
    stack = StackStore(layout).resolve(spec.stack)
    return chosen.run(plan_task(spec, stack), on_start=on_start)
