"""The public Python API: `run(TaskSpec(...)) -> Result`, safe to call from many threads at once; and
a Runtime's tasks in flight (ps, inspect, kill, gc) and stacks (build, import, ls, inspect, promote,
rollback, rm, df, base build), as plain values.

A Runtime is a state root with its backends, which keep what is worth keeping between tasks (the
detected cgroup hierarchy, the uid pool, compiled seccomp filters). `run()` uses one Runtime per
state root, made on first use; a runner host may also make its own.
Tasks and stacks are lxrun.tasks' and lxrun.stacks_api's, imported on first use: `lxrun exec` loads
neither.
"""

from __future__ import annotations

import os

from lxrun.config import Defaults, apply, load_defaults
from lxrun.errors import SpecError, api_edge
from lxrun.layout import HOST_CONFIG, Layout
from lxrun.layout import ROOT_ENV as ROOT_ENV  # the CLI's --root default: it imports nothing below the API
from lxrun.layout import default_root as default_root
from lxrun.plan import plan_task
from lxrun.store.stacks import StackStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lxrun.backends.base import Backend, OnStart
    from lxrun.kept import KeptDir
    from lxrun.result import Result
    from lxrun.spec import TaskSpec
    from lxrun.stacks_api import (
        Built,
        DiskUsage,
        Exported,
        Imported,
        StackCost,
        StackDetails,
        StackSwitch,
        StackVersion,
    )
    from lxrun.tasks import GcReport, TaskInfo

# name -> "module:class", imported on first use: a backend's own dependencies cost only its users.
BACKENDS = {
    "native": "lxrun.backends.native:NativeBackend",
    "lxc": "lxrun.backends.lxc:LxcBackend",
    "docker": "lxrun.backends.docker:DockerBackend",
}


class Runtime:
    """Every public method turns an OSError it meets into an lxrun error naming the operation (the
    cause chained): a caller sees LxrunError, never a raw OSError."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.layout = Layout(root if root is not None else default_root())
        self.stacks = StackStore(self.layout)
        self._backends: dict[str, Backend] = {}
        self._defaults: Defaults | None = None

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

    @api_edge("task")
    def run(self, spec: TaskSpec, *, backend: str = "native", on_start: OnStart | None = None) -> Result:
        """Run one task to its end; `on_start` gets a handle (task_id, send_signal) once it runs.
        A backend that can't honour the spec raises Unsupported before anything is made. The bounds
        the spec leaves unset are the host's defaults (lxrun.config), read once per Runtime."""
        spec = self.with_defaults(spec)
        chosen = self.backend(backend)
        plan = plan_task(spec, self.stacks.resolve(spec.stack))
        chosen.refuse(plan)
        return chosen.run(plan, on_start=on_start)

    def with_defaults(self, spec: TaskSpec) -> TaskSpec:
        """`spec` with the bounds it leaves unset taken from the host's defaults (as run applies them)."""
        if self._defaults is None:
            self._defaults = load_defaults((self.layout.config, HOST_CONFIG), self.layout.config_cache)
        return apply(spec, self._defaults)

    # Tasks in flight
    @api_edge("ps")
    def ps(self) -> list[TaskInfo]:
        """Every task in flight on this state root, with what it uses now."""
        from lxrun.tasks import list_tasks

        return list_tasks(self.layout)

    @api_edge("inspect")
    def inspect(self, id_or_name: str) -> TaskInfo:
        """A task in flight by id, id prefix or name; LxrunError if none."""
        from lxrun.tasks import inspect_task

        return inspect_task(self.layout, id_or_name)

    @api_edge("kill")
    def kill(self, id_or_name: str, signal: int) -> str:
        """Send `signal` to a task in flight (its pid 1 passes it on); returns the task's id."""
        from lxrun.tasks import kill_task

        return kill_task(self.layout, id_or_name, signal)

    @api_edge("gc")
    def gc(self, *, dry_run: bool = False, layers: bool = False) -> GcReport:
        """Release what dead runners left (each task through its own backend); with `layers`, also the
        layers no stack version references and what killed builds left. Never touches a live task."""
        from lxrun.tasks import gc

        return gc(self.layout, self.backend, dry_run, layers)

    @api_edge("kept ls")
    def kept(self) -> list[KeptDir]:
        """The upper dirs tasks kept (keep=True), with their size and age."""
        from lxrun.kept import kept_dirs

        return kept_dirs(self.layout)

    @api_edge("kept rm")
    def remove_kept(self, task_id: str) -> str:
        """Remove the upper dir task `task_id` kept (refused while it runs); returns the path removed."""
        from lxrun.kept import remove_kept

        return remove_kept(self.layout, task_id)

    # Stacks
    @api_edge("stack build")
    def build_stack(
        self, name: str, *, log_fd: int = 2, report: Callable[[str], None] | None = None, promote: bool = True
    ) -> Built:
        """Build stack `name` (or a path to its .toml) and its unbuilt parents; the builders' output goes
        to `log_fd`, one line per step to `report`. Unless `promote` is False the version becomes current."""
        from lxrun.stacks_api import build

        return build(self.layout, name, log_fd, report, promote)

    @api_edge("base build")
    def build_base(self, name: str, *, log_fd: int = 2) -> StackVersion:
        """Build base `name` (or a path to its .toml, rootfs/) and make it the current version of its stack."""
        from lxrun.stacks_api import build_base

        return build_base(self.layout, name, log_fd)

    @api_edge("stack import")
    def import_stack(
        self,
        name: str,
        source: str,
        *,
        platform: str | None = None,
        max_size: int | None = None,
        promote: bool = True,
        insecure: bool = False,
        report: Callable[[str], None] | None = None,
    ) -> Imported:
        """Import an image as stack `name`, one layer per image layer: `source` is a `docker save`
        tarball, an OCI image layout (a directory or a tar), docker-daemon:IMAGE or
        docker://REGISTRY/REPO:TAG (`insecure`: over plain HTTP or unverified TLS). Its version is the
        image id's first 12 hex digits; `platform` (os/arch) picks from a multi-platform index;
        `max_size` caps the bytes its layers may unpack to. Unless `promote` is False the version
        becomes current."""
        from lxrun.stacks_api import import_image

        return import_image(self.layout, name, source, platform, max_size, promote, insecure, report)

    @api_edge("stack export")
    def export_stack(
        self,
        ref: str,
        dest: str,
        *,
        format: str = "docker",
        tag: str | None = None,
        report: Callable[[str], None] | None = None,
    ) -> Exported:
        """Write stack version `ref` (NAME or NAME@VERSION) as an image at `dest`: `format` "docker" (a
        `docker save` tarball, named `tag` or NAME:VERSION) or "oci" (an OCI layout; a tar if `dest`
        ends in .tar). One uncompressed image layer per stack layer, with the image config."""
        from lxrun.stacks_api import export_image

        return export_image(self.layout, ref, dest, format, tag, report)

    @api_edge("stack ls")
    def stack_versions(self) -> list[StackCost]:
        """Every version of every stack, with its size as a diff and flattened."""
        from lxrun.stacks_api import versions

        return versions(self.layout)

    @api_edge("stack inspect")
    def inspect_stack(self, ref: str) -> StackDetails:
        """NAME (its current version) or NAME@VERSION, with its layers."""
        from lxrun.stacks_api import details

        return details(self.layout, ref)

    @api_edge("stack promote")
    def promote(self, ref: str) -> StackSwitch:
        """Make NAME@VERSION current (one atomic rename)."""
        from lxrun.stacks_api import promote

        return promote(self.layout, ref)

    @api_edge("stack rollback")
    def rollback(self, name: str) -> StackSwitch:
        """Make current again the version that was before the last promote."""
        from lxrun.stacks_api import rollback

        return rollback(self.layout, name)

    @api_edge("stack rm")
    def remove_stack(self, ref: str) -> str:
        """Forget NAME@VERSION (refused if current or in use); its layers stay until gc(layers=True)."""
        from lxrun.stacks_api import remove

        return remove(self.layout, ref)

    @api_edge("df")
    def df(self) -> DiskUsage:
        """The current version of every stack: stored as shared layers, and as flattened images."""
        from lxrun.stacks_api import disk_usage

        return disk_usage(self.layout)


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
