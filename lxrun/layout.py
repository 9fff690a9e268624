"""The one place that knows where lxrun keeps things on disk, below a state root passed in.

    <root>/layers/<digest>/rootfs   immutable layer trees, layer.json beside each
    <root>/stacks/<name>/           versions of a stack and which one is current
    <root>/run/<task-id>.json       the record of a task in flight
    <root>/names/<name>             a task name held by a task in flight (a link to its id)
    <root>/uids/leases              byte n locked (OFD lock) while a task uses uid range n of the pool
    <root>/kept/<task-id>/          upper dirs kept with --keep
    <root>/scratch/                 empty; every sandbox mounts its own tmpfs here, in its own mount namespace
    <root>/config.toml              the host's defaults for tasks, for this state root only (lxrun.config)
    <root>/cache/seccomp/           compiled seccomp filters, named after their profile and capabilities
    <root>/cache/seccomp-profiles/  OCI bundles' seccomp profiles, named after their content (compiled once)
    <root>/cache/config.json        the defaults read from the config file in force, named after it
    <root>/tmp/                     work in progress (same filesystem as layers/, so a rename commits it)
    <root>/net/leases/<address>     addresses of bridge-mode tasks, each held with flock while its task runs
    <root>/net/lock                 taken shared to attach a task, exclusively to make or remove the bridge

Paths are strings: pathlib costs several ms to import, paid on every `lxrun exec`.
"""

from __future__ import annotations

import errno
import os

from lxrun.errors import host_errors
from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_ROOT = "/var/lib/lxrun"
ROOT_ENV = "LXRUN_ROOT"
HOST_CONFIG = "/etc/lxrun/config.toml"  # read when the state root has no config.toml of its own


def default_root(environ: Mapping[str, str] | None = None) -> str:
    """$LXRUN_ROOT of `environ` (this process's by default: `lxrun serve` passes its client's), else DEFAULT_ROOT."""
    return (os.environ if environ is None else environ).get(ROOT_ENV) or DEFAULT_ROOT


class Layout(Record):
    __slots__ = ("root",)
    root: str

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root=os.path.abspath(os.fspath(root)))

    @property
    def layers(self) -> str:
        return f"{self.root}/layers"

    def layer(self, digest: str) -> str:
        return f"{self.root}/layers/{digest}"

    def layer_rootfs(self, digest: str) -> str:
        return f"{self.root}/layers/{digest}/rootfs"

    @property
    def stacks(self) -> str:
        return f"{self.root}/stacks"

    def stack(self, name: str) -> str:
        return f"{self.root}/stacks/{name}"

    @property
    def run(self) -> str:
        return f"{self.root}/run"

    def task(self, task_id: str) -> str:
        return f"{self.root}/run/{task_id}.json"

    @property
    def names(self) -> str:
        return f"{self.root}/names"

    @property
    def uid_leases(self) -> str:
        return f"{self.root}/uids"

    @property
    def kept(self) -> str:
        return f"{self.root}/kept"

    def kept_task(self, task_id: str) -> str:
        return f"{self.root}/kept/{task_id}"

    @property
    def scratch(self) -> str:
        return f"{self.root}/scratch"

    @property
    def config(self) -> str:
        return f"{self.root}/config.toml"

    @property
    def config_cache(self) -> str:
        return f"{self.root}/cache/config.json"

    @property
    def seccomp_cache(self) -> str:
        return f"{self.root}/cache/seccomp"

    @property
    def seccomp_profiles(self) -> str:
        return f"{self.root}/cache/seccomp-profiles"

    @property
    def tmp(self) -> str:
        return f"{self.root}/tmp"

    @property
    def net(self) -> str:
        return f"{self.root}/net"

    @property
    def net_leases(self) -> str:
        return f"{self.root}/net/leases"

    @property
    def net_lock(self) -> str:
        return f"{self.root}/net/lock"

    def ensure(self) -> None:
        """Create the state root's directories (idempotent, safe to race). It runs before every task, so
        once they exist it costs one stat: the last one made, the newest kind (older roots lack it)."""
        if os.path.isdir(self.uid_leases):
            return
        with host_errors("state root", path=self.root, hint="give a directory with --root or LXRUN_ROOT"):
            if os.path.lexists(self.root) and not os.path.isdir(self.root):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), self.root)
            os.makedirs(self.root, mode=0o711, exist_ok=True)
            for path in (self.layers, self.stacks, self.run, self.names, self.kept, self.scratch, self.tmp):
                os.makedirs(path, mode=0o700, exist_ok=True)
            os.makedirs(self.uid_leases, mode=0o700, exist_ok=True)
