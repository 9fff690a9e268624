"""The lxc backend: liblxc through python-lxc, the native backend's sandbox described as an LXC config.

Per task: <root>/lxc/<task-id>/ (config, upper and work dirs, log; removed afterwards), a cgroup tree
of ours that LXC's cgroups nest in (cgroups/tree.py: <own cgroup>/lxrun-lxc/<task-id>/, the container in
task/ct, the monitor beside it), and a forked monitor process that calls
Container.start(daemonize=False): liblxc moves its caller into the monitor's cgroups and stays until
the container ends, so that caller must not be us. lxrun-init is pid 1, as with native, and reports
the task's exact wait status (fd 4) or why its exec failed (fd 3): start() itself returns True even
when the task failed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import shutil
import signal
import sys
import time

from lxrun.backends import lxc_config
from lxrun.backends.base import Probe
from lxrun.backends.leftovers import release_task_files
from lxrun.cgroups.discover import own_hierarchies
from lxrun.cgroups.tree import TaskTree, legacy_memory, undelegated
from lxrun.errors import (
    ChildSetupError,
    SetupError,
    Unsupported,
)
from lxrun.net.etc import etc_files
from lxrun.result import Result
from lxrun.sandbox import helper, mounts
from lxrun.sandbox.stdio import TaskStdio
from lxrun.sandbox.supervise import wait
from lxrun.state import claimed_name, task_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import ModuleType
    from typing import Any

    from lxrun.backends.base import OnStart
    from lxrun.layout import Layout
    from lxrun.plan import TaskPlan

TOP = "lxrun-lxc"  # the top of our cgroup trees below our own cgroup (cgroups/tree.py)
CHUNK = 65536
INIT_ERROR_FD = 3  # native/protocol.h: LXRUN_INIT_ERROR_FD, LXRUN_INIT_STATUS_FD
INIT_STATUS_FD = 4
FIND_INIT_PATIENCE = 5.0  # seconds a signal waits for the container's init to exist
LOCK_ROOT = "/run/lxc/lock"


def _import_lxc() -> ModuleType:
    import lxc

    module: ModuleType = lxc
    return module


class _Monitor:
    """The forked process that runs liblxc's start() and stays the container's monitor until it ends.

    Owns the fork: close() kills the container (SIGKILL to its pid 1 ends the whole pid namespace)
    if it still runs, and reaps the monitor."""

    def __init__(self, lxc: ModuleType, lxcpath: str, name: str, argv: list[str], child_fds: list[int]) -> None:
        self.exited = False
        self._init_pid: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            _monitor_main(lxc, lxcpath, name, argv, child_fds)
        # Its own process group: a terminal's Ctrl-C reaches lxrun, which forwards it once.
        with contextlib.suppress(OSError):
            os.setpgid(self.pid, self.pid)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except BaseException:  # nothing owns the fork yet: end it here
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            raise

    def init_pid(self) -> int | None:
        """The container's pid 1 on the host: the monitor's child that is pid 1 of a new pid namespace."""
        deadline = time.monotonic() + FIND_INIT_PATIENCE
        while self._init_pid is None and not self.exited and time.monotonic() < deadline:
            with contextlib.suppress(OSError), open(f"/proc/{self.pid}/task/{self.pid}/children") as file:
                for child in file.read().split():
                    if _is_namespace_init(int(child)):
                        self._init_pid = int(child)
            if self._init_pid is None and select.select([self.pidfd], [], [], 0.001)[0]:
                break
        return self._init_pid

    def send_signal(self, sig: int) -> None:
        pid = self.init_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def reap(self) -> int:
        """The monitor's own wait status (the task's comes from lxrun-init)."""
        _, status = os.waitpid(self.pid, 0)
        self.exited = True
        return status

    def close(self) -> None:
        if not self.exited:
            self.send_signal(signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.reap()
        os.close(self.pidfd)


def _is_namespace_init(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) > 1 and ids[-1] == "1"
    return False


def _monitor_main(lxc: ModuleType, lxcpath: str, name: str, argv: list[str], child_fds: list[int]) -> None:
    """In the forked child: stdio and init's fds 3, 4 in place, nothing else open, then liblxc. Never returns."""
    code = 125
    try:
        os.setpgid(0, 0)
        # Copies above the targets first, so no dup2 overwrites a source still to be placed.
        staged = [fcntl.fcntl(fd, fcntl.F_DUPFD, len(child_fds)) for fd in child_fds]
        for target, fd in enumerate(staged):
            os.dup2(fd, target)
        os.closerange(len(child_fds), os.sysconf("SC_OPEN_MAX"))
        container = lxc.Container(name, lxcpath)
        code = 0 if container.start(daemonize=False, close_fds=False, cmd=tuple(argv)) else 125
    finally:
        os._exit(code)


class _Handle:
    def __init__(self, task_id: str, monitor: _Monitor) -> None:
        self.task_id = task_id
        self._monitor = monitor

    def send_signal(self, sig: int) -> None:
        self._monitor.send_signal(sig)


@contextlib.contextmanager
def _task_dir(layout: Layout, task_id: str) -> Iterator[str]:
    """<root>/lxc/<task-id>: LXC's container dir (config, log, upper, work); gone afterwards, with LXC's lock."""
    lxcpath = f"{layout.root}/lxc"
    directory = f"{lxcpath}/{task_id}"
    os.makedirs(directory, mode=0o700)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(lxcpath)
        _remove_lock(lxcpath, task_id)


def _write_etc_files(directory: str, plan: TaskPlan) -> tuple[tuple[str, str], ...]:
    """The task's /etc files, in its container dir (gone with it): (host file, /etc path) pairs."""
    written = []
    for target, content in etc_files(plan.hostname, plan.spec.network.mode).items():
        path = f"{directory}/{os.path.basename(target)}"
        with open(path, "w") as file:
            file.write(content)
        written.append((path, target))
    return tuple(written)


def _remove_lock(lxcpath: str, task_id: str) -> None:
    """liblxc's lock file for the container (if it made one), and the directories it made for it below
    LOCK_ROOT (a mirror of lxcpath) once no other lock is in them. LOCK_ROOT itself is liblxc's."""
    with contextlib.suppress(OSError):
        os.unlink(f"{LOCK_ROOT}{lxcpath}/.{task_id}")
    path = f"{LOCK_ROOT}{lxcpath}"
    while path != LOCK_ROOT:
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)


def prepare_workdir(layers: tuple[str, ...], upper: str, workdir: str) -> None:
    """Create the workdir in the upper dir where no layer has it, as docker creates a missing workdir.

    LXC only chdirs. A component that a layer has as a directory needs nothing; a symlink is left for
    the sandbox to resolve (then a missing target fails the start); a file can't hold a workdir."""
    parts = [part for part in workdir.split("/") if part]
    for depth in range(1, len(parts) + 1):
        relative = "/".join(parts[:depth])
        top = next(
            (f"{layer}/{relative}" for layer in reversed(layers) if os.path.lexists(f"{layer}/{relative}")), None
        )
        if top is None:
            os.makedirs(f"{upper}/{'/'.join(parts)}", mode=0o755, exist_ok=True)
            return
        if os.path.islink(top):
            return
        if not os.path.isdir(top):
            raise ChildSetupError.from_errno(
                "workdir", errno.ENOTDIR, workdir, hint="give a directory the task can enter with -w"
            )


def _read_all(fd: int) -> bytes:
    data = bytearray()
    while chunk := os.read(fd, CHUNK):
        data += chunk
    return bytes(data)


def _log_reason(log: str) -> str:
    """liblxc's first error: what went wrong first (what follows is mostly clean-up failing after it)."""
    with contextlib.suppress(OSError), open(log) as file:
        for line in file:
            if " ERROR " in line:
                return line.strip().split(" - ", 1)[-1]
    return "liblxc could not start the container (no log)"


class _InitPipes:
    """lxrun-init's two pipes, fd 3 (why the exec failed) and fd 4 (the task's wait status); owns all four ends."""

    def __init__(self) -> None:
        self.error_read, self.error_write = os.pipe2(os.O_CLOEXEC)
        try:
            self.status_read, self.status_write = os.pipe2(os.O_CLOEXEC)
        except BaseException:
            os.close(self.error_read)
            os.close(self.error_write)
            raise
        self._open = [self.error_read, self.error_write, self.status_read, self.status_write]

    def close_write_ends(self) -> None:
        """After the fork: the monitor holds them; ours would keep the pipes from ever ending."""
        for fd in (self.error_write, self.status_write):
            self._open.remove(fd)
            os.close(fd)

    def read(self) -> tuple[bytes, bytes]:
        return _read_all(self.error_read), _read_all(self.status_read)

    def close(self) -> None:
        for fd in self._open:
            os.close(fd)
        self._open.clear()


class LxcBackend:
    name = "lxc"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def probe(self) -> Probe:
        if os.geteuid() != 0:
            return Probe(False, "needs root (run as root)")
        try:
            lxc = _import_lxc()
        except ImportError:
            return Probe(False, "python-lxc is not installed (apt-get install lxc-dev; pip install 'lxrun[backends]')")
        if not os.path.isfile(helper.INIT_PATH):
            return Probe(False, f"{helper.INIT_PATH} is not built (pip install -e .)")
        if not mounts.overlayfs_available():
            return Probe(False, "overlayfs is not available (build or install the overlay module)")
        missing = undelegated(own_hierarchies())
        if missing:
            return Probe(False, f"cgroup v2: lxrun's own cgroup does not delegate {', '.join(missing)} to its children")
        return Probe(True, f"liblxc {getattr(lxc, 'version', '?')}")

    def refuse(self, plan: TaskPlan) -> None:
        """What a config file can't say (lxrun's bridge, a line break), a cgroup parent of the task's own
        and a pty of the task's own."""
        lxc_config.network_lines(plan)
        lxc_config.check_one_line(plan)
        if plan.spec.cgroup_parent is not None:
            raise Unsupported(
                "cgroup_parent", "the lxc backend nests its cgroups under lxrun's own", hint="use native or docker"
            )
        if plan.spec.tty:
            raise Unsupported("tty", "the lxc backend gives a task no pty of its own", hint="use native")

    def run(self, plan: TaskPlan, on_start: OnStart | None = None) -> Result:
        spec = plan.spec
        self.layout.ensure()
        hierarchies = own_hierarchies()
        memory = legacy_memory(hierarchies)
        with contextlib.ExitStack() as resources:
            record = resources.enter_context(task_record(self.layout, plan, self.name))
            resources.enter_context(claimed_name(self.layout, spec.name, plan.task_id))
            directory = resources.enter_context(_task_dir(self.layout, plan.task_id))
            kept = self.layout.kept_task(plan.task_id) if spec.keep else None
            upper = f"{kept or directory}/upper"
            os.makedirs(upper, mode=0o755)
            if kept:
                resources.callback(shutil.rmtree, f"{kept}/work", True)
            prepare_workdir(plan.stack.layer_paths, upper, plan.workdir)
            cgroups = resources.enter_context(TaskTree(plan.task_id, hierarchies, TOP).created(spec.limits))
            # The stop hook that copies v1's OOM count costs ~10 ms a task: only where a limit can OOM-kill.
            watch_oom = memory is not None and spec.limits.memory is not None
            oom_copy = f"{directory}/oom_control" if watch_oom else None
            paths = lxc_config.LxcPaths(
                upper=upper,
                log=f"{directory}/log",
                init=helper.INIT_PATH,
                oom_control=(
                    memory.path(f"{lxc_config.container_cgroup(cgroups)}/memory.oom_control")
                    if memory and watch_oom
                    else None
                ),
                oom_copy=oom_copy,
                etc_files=_write_etc_files(directory, plan),
            )
            swap_accounting = cgroups.swap_accounting()
            with open(f"{directory}/config", "w") as config:
                config.write(
                    lxc_config.render(plan, paths, cgroups, legacy=memory is not None, swap_accounting=swap_accounting)
                )

            stdio = resources.enter_context(TaskStdio(spec))
            init_pipes = _InitPipes()
            resources.callback(init_pipes.close)
            child_fds = [
                stdio.stdin_fd,
                stdio.stdout_fd,
                stdio.stderr_fd,
                init_pipes.error_write,
                init_pipes.status_write,
            ]

            started = time.monotonic()
            argv = [lxc_config.INIT_TARGET, *plan.argv]
            # python-lxc is imported here, not after the fork: the child runs nothing it doesn't have to.
            monitor = _Monitor(_import_lxc(), f"{self.layout.root}/lxc", plan.task_id, argv, child_fds)
            resources.callback(monitor.close)
            stdio.close_child_ends()
            init_pipes.close_write_ends()
            if on_start is not None:  # the handle's signals wait for the container's pid 1 to exist
                on_start(_Handle(plan.task_id, monitor))
            init_pid = monitor.init_pid()  # as the task can't end before it exists, this costs no time
            if init_pid is not None:
                record.running_as(init_pid)
            _, timed_out = wait(monitor, stdio.relay, started, spec.timeout, spec.stop_timeout)
            wall_time = time.monotonic() - started
            outputs, truncated = stdio.finish()
            error_record, status_record = init_pipes.read()
            usage = cgroups.usage(oom_copy)
            if error_record:
                raise helper.init_error(error_record, plan.env)
            if len(status_record) == 4:
                status = int.from_bytes(status_record, sys.byteorder, signed=True)
            elif timed_out or usage.oom_killed:
                status = signal.SIGKILL  # pid 1 itself was killed: the whole sandbox went with it
            else:
                raise SetupError("lxc start", _log_reason(paths.log), path=plan.task_id)
        return Result.from_wait_status(
            status,
            usage,
            task_id=plan.task_id,
            name=spec.name,
            stack=plan.stack.ref,
            backend=self.name,
            wall_time=wall_time,
            stdout=outputs.get("stdout"),
            stderr=outputs.get("stderr"),
            upper_dir=upper if kept else None,
            timed_out=timed_out,
            output_truncated=truncated,
        )

    def release_leftovers(self, task_id: str, record_data: Mapping[str, Any] | None, dry_run: bool) -> list[str]:
        return release_leftovers(self.layout, task_id, dry_run) + release_task_files(
            self.layout, task_id, record_data, dry_run
        )


def release_leftovers(layout: Layout, task_id: str, dry_run: bool) -> list[str]:
    """For `lxrun gc`: what an lxc task whose runner died left: its processes and cgroup tree, its dir."""
    released = []
    tree = TaskTree(task_id, own_hierarchies(), TOP)
    if tree.exists():
        released.append(f"lxc cgroup tree {tree.relative}")
        if not dry_run:
            tree.kill_all()
            tree.remove()
    directory = f"{layout.root}/lxc/{task_id}"
    if os.path.isdir(directory):
        released.append(f"lxc container dir {directory}")
        if not dry_run:
            shutil.rmtree(directory, ignore_errors=True)
            _remove_lock(f"{layout.root}/lxc", task_id)
    return released
