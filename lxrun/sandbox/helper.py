"""The Python side of the native helper: a SpawnRequest becomes C structs, one call starts the sandbox.

The call returns once the task's command has been exec'd (or raises the child's failure record as a
ChildSetupError naming the step). The returned SandboxProcess owns the pid 1 it started: closing it
kills and reaps that process if it still runs, and closes its descriptors.
"""

from __future__ import annotations

import _thread
import contextlib
import errno as errno_codes
import os

from lxrun import signals as signal
from lxrun.errors import (
    ChildSetupError,
    CommandNotExecutable,
    CommandNotFound,
    HostUnsupported,
    LxrunError,
    SetupError,
    SpecError,
    host_errors,
)
from lxrun.record import Record
from lxrun.sandbox import mounts
from lxrun.sandbox.caps import bitmask
from lxrun.sandbox.task_status import RECORD_SIZE, task_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping, Sequence
    from types import TracebackType
    from typing import Any

    from lxrun.sandbox.mounts import MountStep
    from lxrun.sandbox.seccomp.profile import Resolved

try:
    from lxrun._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise HostUnsupported(
        "native helper", f"lxrun._native is not built ({exc})", hint="run `pip install -e .` to build it"
    ) from exc

INIT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_lxrun_init")
# Sealed memfd copies of init binaries (lxrun_seal_init), made once per process and reused by every
# task: a path's copy is never closed, as a spawn in another thread may be using it.
_sealed_inits: dict[str, int] = {}
_sealing = _thread.allocate_lock()

# Namespaces of the sandbox's second stage; the network namespace is the first stage's (see NETWORK).
NAMESPACE_FLAGS = {
    "mount": lib.CLONE_NEWNS,
    "pid": lib.CLONE_NEWPID,
    "uts": lib.CLONE_NEWUTS,
    "ipc": lib.CLONE_NEWIPC,
    "user": lib.CLONE_NEWUSER,
}
CAN_CLONE_INTO_CGROUP = bool(lib.lxrun_can_clone_into_cgroup())
NETWORK = {"new": lib.LXRUN_NET_NEW, "join": lib.LXRUN_NET_JOIN, "host": lib.LXRUN_NET_HOST}
MOUNT_FLAGS = {
    "ro": lib.MS_RDONLY,
    "nosuid": lib.MS_NOSUID,
    "nodev": lib.MS_NODEV,
    "noexec": lib.MS_NOEXEC,
    "bind": lib.MS_BIND,
    "rec": lib.MS_REC,
    "private": lib.MS_PRIVATE,
}
MOUNT_ATTRS = {
    "ro": lib.MOUNT_ATTR_RDONLY,
    "nosuid": lib.MOUNT_ATTR_NOSUID,
    "nodev": lib.MOUNT_ATTR_NODEV,
    "noexec": lib.MOUNT_ATTR_NOEXEC,
    "idmap": lib.MOUNT_ATTR_IDMAP,
}
OPS = {
    mounts.HOST_MKDIR: lib.LXRUN_OP_HOST_MKDIR,
    mounts.HOST_MOUNT: lib.LXRUN_OP_HOST_MOUNT,
    mounts.HOST_BIND: lib.LXRUN_OP_HOST_BIND,
    mounts.HOST_WRITE: lib.LXRUN_OP_HOST_WRITE,
    mounts.HOST_MKNOD: lib.LXRUN_OP_HOST_MKNOD,
    mounts.SYMLINK: lib.LXRUN_OP_SYMLINK,
    mounts.SET_ATTR: lib.LXRUN_OP_SET_ATTR,
    mounts.REBIND: lib.LXRUN_OP_REBIND,
    mounts.OPEN_ROOT: lib.LXRUN_OP_OPEN_ROOT,
    mounts.FS: lib.LXRUN_OP_FS,
    mounts.BIND: lib.LXRUN_OP_BIND,
    mounts.MKDIR: lib.LXRUN_OP_MKDIR,
    mounts.PIVOT_ROOT: lib.LXRUN_OP_PIVOT,
    mounts.HOST_VOLUME: lib.LXRUN_OP_HOST_VOLUME,
    mounts.MOVE: lib.LXRUN_OP_MOVE,
}
CREATE = {
    mounts.CREATE_NONE: lib.LXRUN_CREATE_NONE,
    mounts.CREATE_DIR: lib.LXRUN_CREATE_DIR,
    mounts.CREATE_FILE: lib.LXRUN_CREATE_FILE,
    mounts.CREATE_SKIP: lib.LXRUN_CREATE_SKIP,
}
STEP_NAMES = {
    lib.LXRUN_STEP_SPAWN: "spawn",
    lib.LXRUN_STEP_CGROUP: "join cgroup",
    lib.LXRUN_STEP_CGROUPNS: "cgroup namespace",
    lib.LXRUN_STEP_HOSTNAME: "hostname",
    lib.LXRUN_STEP_LOOPBACK: "loopback",
    lib.LXRUN_STEP_MOUNT: "mount",
    lib.LXRUN_STEP_WORKDIR: "workdir",
    lib.LXRUN_STEP_USER: "user",
    lib.LXRUN_STEP_STDIO: "stdio",
    lib.LXRUN_STEP_EXEC_INIT: "exec init",
    lib.LXRUN_STEP_EXEC: "exec",
    lib.LXRUN_STEP_INIT: "init",
    lib.LXRUN_STEP_NETNS: "network namespace",
    lib.LXRUN_STEP_USERNS: "user namespace",
    lib.LXRUN_STEP_SYNC: "stage handover",
    lib.LXRUN_STEP_CAPS: "drop capabilities",
    lib.LXRUN_STEP_NO_NEW_PRIVS: "no_new_privs",
    lib.LXRUN_STEP_SECCOMP: "seccomp",
    lib.LXRUN_STEP_JOIN_NS: "join namespace",
    lib.LXRUN_STEP_RLIMIT: "rlimit",
}
RLIM_ALL_ONES = 2**64 - 1
with open("/proc/sys/kernel/cap_last_cap") as _cap_last:
    CAP_LAST = int(_cap_last.read())


class SpawnRequest(Record):
    """Everything both stages need, decided before they exist.

    `namespaces` are the second stage's (mount, pid, uts, ipc, user); `network` is "new" (a network
    namespace of its own with loopback up), "join" (the namespace at `netns_fd`) or "host". With a
    user namespace, `uid_map`/`gid_map` are written for it from outside. `caps` is what the task
    keeps, every set included; `seccomp` the compiled filter, or None. The task joins its cgroups by
    writing to `cgroup_join_fds`, or (v2, where CLONE_INTO_CGROUP can be used) is born in the cgroup
    directory open at `cgroup_dir_fd`. `shared_steps`, `shared_host_steps`: what `steps` and
    `host_steps` begin with, already in C form. `root_owner`: the host uid (and gid) of the task's
    root, what the host steps owned by mounts.TASK_ROOT are chowned to (None: root).
    `task_fd` >= 0 prepares the sandbox: pid 1 starts with no command (`argv` empty) and waits on that
    socket for its task (hand_task). `detached`: pid 1 outlives the caller (no parent-death signal).
    `groups`: the supplementary groups. `joined`: (descriptor, kind) of ipc or uts namespaces entered
    instead of made (an OCI container's by path); `namespaces` then leaves those kinds out. `rlimits`:
    (RLIMIT_NAME, soft, hard) set by stage 2 before it becomes the task's user.
    """

    __slots__ = (
        "argv",
        "caps",
        "cgroup_dir_fd",
        "cgroup_join_fds",
        "cwd",
        "detached",
        "env",
        "gid",
        "gid_map",
        "groups",
        "host_steps",
        "hostname",
        "init_path",
        "joined",
        "namespaces",
        "netns_fd",
        "network",
        "new_cgroupns",
        "rlimits",
        "root_owner",
        "seccomp",
        "shared_host_steps",
        "shared_steps",
        "stderr_fd",
        "stdin_fd",
        "stdout_fd",
        "steps",
        "task_fd",
        "uid",
        "uid_map",
    )
    namespaces: frozenset[str]
    host_steps: Sequence[MountStep]
    steps: Sequence[MountStep]
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str
    stdin_fd: int
    stdout_fd: int
    stderr_fd: int
    hostname: str | None
    network: str
    netns_fd: int
    uid_map: str | None
    gid_map: str | None
    uid: int
    gid: int
    caps: frozenset[str] | None
    seccomp: Filter | None
    cgroup_join_fds: Sequence[int]
    cgroup_dir_fd: int
    new_cgroupns: bool
    init_path: str
    shared_steps: StepTable | None
    task_fd: int
    detached: bool
    groups: Sequence[int]
    joined: Sequence[tuple[int, str]]
    rlimits: Sequence[tuple[str, int, int]]
    shared_host_steps: StepTable | None
    root_owner: int | None

    def __init__(
        self,
        namespaces: frozenset[str],
        host_steps: Sequence[MountStep],
        steps: Sequence[MountStep],
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        stdin_fd: int,
        stdout_fd: int,
        stderr_fd: int,
        hostname: str | None = None,
        network: str = "new",
        netns_fd: int = -1,
        uid_map: str | None = None,
        gid_map: str | None = None,
        uid: int = 0,
        gid: int = 0,
        caps: frozenset[str] | None = None,
        seccomp: Filter | None = None,
        cgroup_join_fds: Sequence[int] = (),
        cgroup_dir_fd: int = -1,
        new_cgroupns: bool = False,
        init_path: str = INIT_PATH,
        shared_steps: StepTable | None = None,
        task_fd: int = -1,
        detached: bool = False,
        groups: Sequence[int] = (),
        joined: Sequence[tuple[int, str]] = (),
        rlimits: Sequence[tuple[str, int, int]] = (),
        shared_host_steps: StepTable | None = None,
        root_owner: int | None = None,
    ) -> None:
        super().__init__(
            namespaces=namespaces,
            host_steps=host_steps,
            steps=steps,
            argv=argv,
            env=env,
            cwd=cwd,
            stdin_fd=stdin_fd,
            stdout_fd=stdout_fd,
            stderr_fd=stderr_fd,
            hostname=hostname,
            network=network,
            netns_fd=netns_fd,
            uid_map=uid_map,
            gid_map=gid_map,
            uid=uid,
            gid=gid,
            caps=caps,
            seccomp=seccomp,
            cgroup_join_fds=cgroup_join_fds,
            cgroup_dir_fd=cgroup_dir_fd,
            new_cgroupns=new_cgroupns,
            init_path=init_path,
            shared_steps=shared_steps,
            task_fd=task_fd,
            detached=detached,
            groups=groups,
            joined=joined,
            rlimits=rlimits,
            shared_host_steps=shared_host_steps,
            root_owner=root_owner,
        )

    def step(self, index: int) -> MountStep | None:
        """The step a failure record's index names: host steps first, then the sandbox's."""
        every = [*self.host_steps, *self.steps]
        return every[index] if 0 <= index < len(every) else None


# The points lxrun_spawn marks on its way (native/helper.h, enum lxrun_mark), in order.
SPAWN_MARKS = ("called", "stage1", "stage2", "go", "pivot", "pivoted", "exec", "returned")
assert len(SPAWN_MARKS) == lib.LXRUN_MARKS


class SandboxProcess:
    """The sandbox's pid 1, started by us. Owns its pidfd and status pipe; `close` releases both.
    `marks`: when the spawn reached each of SPAWN_MARKS (time.monotonic_ns(); 0 if it didn't)."""

    def __init__(self, pid: int, pidfd: int, status_fd: int, marks: tuple[int, ...] = ()) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.status_fd = status_fd
        self.marks = marks
        self._wait_status: int | None = None

    def send_signal(self, sig: int) -> None:
        """Signal pid 1 (init forwards it to the task); a process already gone is not an error."""
        if self._wait_status is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, sig)

    def reap(self) -> int:
        """Wait for pid 1 to end; returns the task's wait status, as far as the kernel confirms it (task_status)."""
        if self._wait_status is None:
            _, own_status = os.waitpid(self.pid, 0)
            # One byte more than a record: init writes once, so more means someone else wrote too.
            record = os.read(self.status_fd, RECORD_SIZE + 1)
            self._wait_status = task_status(record, own_status)
        return self._wait_status

    def close(self) -> None:
        if self._wait_status is None:
            self.send_signal(signal.SIGKILL)
            self.reap()
        os.close(self.pidfd)
        os.close(self.status_fd)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Builder:
    """Keeps every cffi allocation alive until the C call returns."""

    def __init__(self) -> None:
        self.keep: list[Any] = []

    def cstr(self, value: str | None) -> Any:
        if value is None:
            return ffi.NULL
        buf = ffi.new("char[]", os.fsencode(value))
        self.keep.append(buf)
        return buf

    def cstr_array(self, values: Sequence[str]) -> Any:
        array = ffi.new("char *[]", [self.cstr(value) for value in values] + [ffi.NULL])
        self.keep.append(array)
        return array

    def steps(self, steps: Sequence[MountStep], shared: StepTable | None = None) -> Any:
        """`steps` in C; where they begin with `shared`'s (the same objects), those are copied as built."""
        array = ffi.new("struct lxrun_step[]", max(len(steps), 1))
        self.keep.append(array)
        done = 0
        if shared is not None and shared.starts(steps):
            done = len(shared.steps)
            ffi.memmove(array, shared.array, ffi.sizeof("struct lxrun_step") * done)
            self.keep.append(shared)
        for c_step, step in zip(array[done : len(steps)], steps[done:], strict=True):
            c_step.op = OPS[step.op]
            c_step.source = self.cstr(step.source)
            c_step.target = self.cstr(step.target)
            c_step.fstype = self.cstr(step.fstype)
            c_step.data = self.cstr(step.data)
            c_step.flags = _combine(step.flags, MOUNT_FLAGS)
            c_step.attr = _combine(step.attrs, MOUNT_ATTRS)
            c_step.create = CREATE[step.create]
            c_step.mode = step.mode
            c_step.owner = -1 if step.owner is None else step.owner
            c_step.device = step.device
        return array


class StepTable:
    """Mount steps put in the helper's C form once: those every sandbox of a kind begins with (its
    /proc, /dev, /tmp, masks and cgroup view), shared by each spawn whose steps start with them."""

    def __init__(self, steps: Sequence[MountStep]) -> None:
        self.steps = tuple(steps)
        self._build = _Builder()
        self.array = self._build.steps(self.steps)

    def starts(self, steps: Sequence[MountStep]) -> bool:
        """Whether `steps` begins with these very objects (what the composer hands over)."""
        count = len(self.steps)
        return len(steps) >= count and all(ours is theirs for ours, theirs in zip(self.steps, steps, strict=False))


def _combine(names: frozenset[str], table: Mapping[str, int]) -> int:
    value = 0
    for name in names:
        value |= table[name]
    return value


def spawn(request: SpawnRequest) -> SandboxProcess:
    """Start the sandbox; returns once the task's command runs. Raises LxrunError naming the failed step."""
    build = _Builder()
    c_request = ffi.new("struct lxrun_request *")
    c_request.clone_flags = _combine(request.namespaces, NAMESPACE_FLAGS)
    c_request.net = NETWORK[request.network]
    c_request.netns_fd = request.netns_fd
    c_request.uid_map = build.cstr(request.uid_map)
    c_request.gid_map = build.cstr(request.gid_map)
    c_request.new_cgroupns = int(request.new_cgroupns)
    cgroup_fds = ffi.new("int[]", list(request.cgroup_join_fds) or [-1])
    c_request.cgroup_fds = cgroup_fds
    c_request.n_cgroup_fds = len(request.cgroup_join_fds)
    c_request.cgroup_dir_fd = request.cgroup_dir_fd
    c_request.host_steps = build.steps(request.host_steps, request.shared_host_steps)
    c_request.root_owner = -1 if request.root_owner is None else request.root_owner
    c_request.n_host_steps = len(request.host_steps)
    c_request.steps = build.steps(request.steps, request.shared_steps)
    c_request.n_steps = len(request.steps)
    c_request.hostname = build.cstr(request.hostname)
    c_request.init_path = build.cstr(request.init_path)
    c_request.init_fd = sealed_init(request.init_path)
    c_request.init_argv = build.cstr_array(["lxrun-init", *request.argv])
    c_request.envp = build.cstr_array([f"{key}={value}" for key, value in request.env.items()])
    c_request.cwd = build.cstr(request.cwd)
    c_request.uid = request.uid
    c_request.gid = request.gid
    c_request.drop_caps = int(request.caps is not None)
    c_request.caps = bitmask(request.caps or ())
    c_request.cap_last = CAP_LAST
    if request.seccomp is not None:
        c_request.seccomp_filter = request.seccomp.program
        c_request.seccomp_len = request.seccomp.length
    c_request.stdin_fd = request.stdin_fd
    c_request.stdout_fd = request.stdout_fd
    c_request.stderr_fd = request.stderr_fd
    c_request.task_fd = request.task_fd
    c_request.detached = int(request.detached)
    groups = ffi.new("uint32_t[]", list(request.groups) or [0])
    c_request.groups = groups
    c_request.n_groups = len(request.groups)
    join_fds = ffi.new("int[]", [fd for fd, _ in request.joined] or [-1])
    join_types = ffi.new("int[]", [NAMESPACE_FLAGS[kind] for _, kind in request.joined] or [0])
    c_request.join_ns_fds, c_request.join_ns_types, c_request.n_join_ns = join_fds, join_types, len(request.joined)
    rlimits = ffi.new("struct lxrun_rlimit[]", [_c_rlimit(*limit) for limit in request.rlimits] or 1)
    c_request.rlimits, c_request.n_rlimits = rlimits, len(request.rlimits)
    child = ffi.new("struct lxrun_child *")
    error = ffi.new("struct lxrun_error *")
    if lib.lxrun_spawn(c_request, child, error) != 0:
        raise _child_error(error, request)
    return SandboxProcess(child.pid, child.pidfd, child.status_fd, tuple(child.marks))


def exec_in_sandbox(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    user: tuple[int, int],
    caps: frozenset[str],
    seccomp: Filter | None,
    error_fd: int,
    groups: Sequence[int] = (),
) -> None:
    """In a process already in a sandbox's namespaces and cgroup (`lxrun-oci exec`'s): become its user with
    `caps`, no_new_privs and `seccomp`, in `cwd`, and exec `argv`. Never returns: a failure is a record
    on `error_fd` (init_error reads it) and the process exits."""
    build = _Builder()
    c_request = ffi.new("struct lxrun_request *")
    c_request.init_argv = build.cstr_array(list(argv))
    c_request.envp = build.cstr_array([f"{key}={value}" for key, value in env.items()])
    c_request.cwd = build.cstr(cwd)
    c_request.uid, c_request.gid = user
    c_request.drop_caps = 1
    c_groups = ffi.new("uint32_t[]", list(groups) or [0])
    c_request.groups = c_groups
    c_request.n_groups = len(groups)
    c_request.caps = bitmask(caps)
    c_request.cap_last = CAP_LAST
    if seccomp is not None:
        c_request.seccomp_filter = seccomp.program
        c_request.seccomp_len = seccomp.length
    lib.lxrun_exec_in_sandbox(c_request, error_fd)


def task_message(argv: Sequence[str], env: Mapping[str, str]) -> bytes | None:
    """A prepared sandbox's task as init reads it (protocol.h), or None if it is more than a message carries."""
    strings = [os.fsencode(value) for value in argv] + [os.fsencode(f"{key}={value}") for key, value in env.items()]
    body = b"\0".join(strings) + b"\0"
    if len(body) > lib.LXRUN_TASK_MAX or len(strings) > lib.LXRUN_TASK_STRINGS:
        return None
    header = ffi.new("struct lxrun_task_header *", [lib.LXRUN_TASK_MAGIC, len(argv), len(env), len(body)])
    return bytes(ffi.buffer(header)) + body


def hand_task(task_socket: socket.socket, message: bytes, stdio: tuple[int, int, int]) -> None:
    """Give a prepared sandbox's pid 1 its task (a task_message) and the task's stdio; await_exec then
    tells whether its command runs."""
    with host_errors("hand over task"):
        send_task(task_socket, message, stdio)


def await_exec(task_socket: socket.socket, env: Mapping[str, str]) -> None:
    """Block until a handed task's command runs (its copy of the socket closes with the exec), or raise
    why it could not be exec'd, as spawn does for a cold sandbox. Once pid 1 has exited this never
    blocks: the record, or end-of-file, is already there."""
    with host_errors("hand over task"):
        record = task_socket.recv(ffi.sizeof("struct lxrun_error"))
    if record:
        raise init_error(record, env)


def send_task(task_socket: socket.socket, message: bytes, fds: Sequence[int]) -> None:
    """Send a task_message with its stdio (and, for a created OCI container, the O_PATH descriptor of
    the FIFO pid 1 opens before it starts the command: protocol.h); OSError as raised."""
    import array
    import socket

    task_socket.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


def sealed_init(path: str) -> int:
    """The sealed memfd copy of the init binary at `path` that pid 1 is exec'd from (made on first use)."""
    fd = _sealed_inits.get(path)
    if fd is None:
        with _sealing:
            fd = _sealed_inits.get(path)
            if fd is None:
                fd = lib.lxrun_seal_init(os.fsencode(path))
                if fd < 0:
                    hint = "build it: pip install -e ." if -fd == errno_codes.ENOENT else None
                    raise SetupError.from_errno("seal init", -fd, path, hint=hint)
                _sealed_inits[path] = fd
    return fd


def _exec_error(code: int, path: str | None, env: Mapping[str, str]) -> LxrunError:
    """The task's command could not be exec'd: docker run's 127 when it is missing, else 126."""
    if code == errno_codes.ENOENT:
        return CommandNotFound(
            "exec",
            "command not found in the sandbox",
            path=path,
            errno=code,
            hint=f"is it installed in the stack? PATH={env.get('PATH', '')}",
        )
    return CommandNotExecutable.from_errno("exec", code, path)


def init_error(record: bytes, env: Mapping[str, str]) -> LxrunError:
    """lxrun-init's failure record (struct lxrun_error, as it writes it to its error descriptor when
    another runtime, such as liblxc, started it) as the error native raises for the same failure."""
    error = ffi.new("struct lxrun_error *")
    ffi.memmove(error, record, min(len(record), ffi.sizeof("struct lxrun_error")))
    path = os.fsdecode(ffi.string(error.path)) or None
    if error.step == lib.LXRUN_STEP_EXEC:
        return _exec_error(error.err, path, env)
    return ChildSetupError.from_errno("init", error.err, path)


def _c_rlimit(name: str, soft: int, hard: int) -> tuple[int, int, int]:
    """(RLIMIT_NAME, soft, hard) as struct lxrun_rlimit: resource's infinity (-1) is the kernel's (all ones)."""
    import resource

    return getattr(resource, name), soft & RLIM_ALL_ONES, hard & RLIM_ALL_ONES


def _child_error(error: Any, request: SpawnRequest) -> LxrunError:
    code = error.err
    path = os.fsdecode(ffi.string(error.path)) or None
    step = STEP_NAMES.get(error.step, f"step {error.step}")
    if error.step == lib.LXRUN_STEP_EXEC:
        return _exec_error(code, path, request.env)
    if error.step == lib.LXRUN_STEP_RLIMIT:
        name, soft, hard = request.rlimits[error.index]
        hint = "raising a hard limit above the caller's needs CAP_SYS_RESOURCE" if code == errno_codes.EPERM else None
        return ChildSetupError.from_errno(step, code, f"{name} soft {soft} hard {hard}", hint=hint)
    failed_step = request.step(error.index) if error.step == lib.LXRUN_STEP_MOUNT else None
    if failed_step is not None and failed_step.op in (mounts.HOST_VOLUME, mounts.MOVE):
        return _volume_error(failed_step, code, path)
    if failed_step is not None:
        step = failed_step.what
        if "idmap" in failed_step.attrs and code == errno_codes.EINVAL:
            return ChildSetupError.from_errno(
                step,
                code,
                path,
                hint="this kernel can't idmap the filesystem holding the layers: put the state root on "
                "ext4, xfs or btrfs (tmpfs needs Linux 6.3), or run with --userns host",
            )
    if error.step == lib.LXRUN_STEP_SPAWN:
        return SetupError.from_errno(step, code, path)
    if error.step == lib.LXRUN_STEP_WORKDIR:
        return ChildSetupError.from_errno(step, code, path, hint="give a directory the task can enter with -w")
    return ChildSetupError.from_errno(step, code, path)


# Why a volume's move onto its target failed, where the errno alone would not say.
MOVE_HINTS = {
    errno_codes.EISDIR: "a file can't be mounted over a directory",
    errno_codes.ENOTDIR: "a directory can't be mounted over a file, nor below one",
}


def _volume_error(step: MountStep, code: int, path: str | None) -> LxrunError:
    hint = MOVE_HINTS.get(code) if step.op == mounts.MOVE else None
    if step.op == mounts.HOST_VOLUME and code == errno_codes.ELOOP:
        hint = f"a symlink is in its path: give the resolved path {os.path.realpath(step.source or '/')}"
    elif step.op == mounts.HOST_VOLUME and code == errno_codes.EINVAL and "idmap" in step.attrs:
        hint = (
            "this kernel can't idmap the filesystem it is on (tmpfs needs Linux 6.3): add the noidmap option "
            "(-v SRC:DST:noidmap, Volume(idmap=False)) for a plain bind, or run with --userns host"
        )
    return ChildSetupError.from_errno(step.what, code, path, hint=hint)


def new_netns_fd() -> int:
    """A new network namespace (only a down `lo` in it) as an O_CLOEXEC descriptor the caller owns: made by a
    vfork'd child on its own stack, so Python is not forked."""
    fd: int = lib.lxrun_new_netns()
    if fd < 0:
        raise SetupError.from_errno("new network namespace", -fd)
    return fd


def enter_netns(netns_fd: int) -> None:
    """Move the calling thread into the network namespace at `netns_fd`."""
    code = lib.lxrun_setns(netns_fd, lib.CLONE_NEWNET)
    if code < 0:
        raise SetupError.from_errno("enter network namespace", -code, path=f"fd {netns_fd}")


def enter_namespace(fd: int, kind: str) -> None:
    """Move the calling thread into the namespace open at `fd`, of `kind` (a /proc/PID/ns name)."""
    flag = {"cgroup": lib.CLONE_NEWCGROUP, "ipc": lib.CLONE_NEWIPC, "uts": lib.CLONE_NEWUTS, "net": lib.CLONE_NEWNET,
            "pid": lib.CLONE_NEWPID, "mnt": lib.CLONE_NEWNS}[kind]  # fmt: skip
    code = lib.lxrun_setns(fd, flag)
    if code < 0:
        raise SetupError.from_errno(f"enter {kind} namespace", -code, path=f"fd {fd}")


SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
SECCOMP_ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM")  # beside the profile's own SCMP_ARCH values


class Filter:
    """Compiled seccomp BPF: `program` points at `length` struct sock_filter, alive as long as this object."""

    def __init__(self, program: Any, length: int, keep: Any = None) -> None:
        self.program = program
        self.length = length
        self._keep = keep  # the buffer `program` points into, when it is not `program` itself

    @classmethod
    def from_bytes(cls, program: bytes) -> Filter:
        buffer = ffi.new("char[]", program)
        return cls(ffi.cast("void *", buffer), len(program) // SOCK_FILTER_SIZE, keep=buffer)

    def to_bytes(self) -> bytes:
        return bytes(ffi.buffer(self.program, self.length * SOCK_FILTER_SIZE))


def compile_seccomp(resolved: Resolved, arch_names: Sequence[str], path: str) -> Filter:
    """`resolved` compiled to BPF by libseccomp; a profile libseccomp refuses is a SpecError naming the rule."""
    keep: list[Any] = []
    rules = ffi.new("struct lxrun_seccomp_rule[]", max(1, len(resolved.rules)))
    for c_rule, rule in zip(rules, resolved.rules, strict=False):
        name = ffi.new("char[]", rule.name.encode())
        args = ffi.new("struct lxrun_seccomp_arg[]", max(1, len(rule.args)))
        for c_arg, (index, op, value, value_two) in zip(args, rule.args, strict=False):
            c_arg.index, c_arg.op, c_arg.value, c_arg.value_two = index, getattr(lib, op), value, value_two
        keep += [name, args]
        c_rule.name, c_rule.action, c_rule.args, c_rule.n_args = name, rule.action, args, len(rule.args)
    known_arches = {name: getattr(lib, name) for name in (*arch_names, *SECCOMP_ARCHES)}
    arches = ffi.new("uint32_t[]", [known_arches[a] for a in resolved.arches if a in known_arches] or [0])
    profile = ffi.new("struct lxrun_seccomp_profile *")
    profile.default_action = resolved.default_action
    profile.arches = arches
    profile.n_arches = sum(1 for a in resolved.arches if a in known_arches)
    profile.rules = rules
    profile.n_rules = len(resolved.rules)
    program = ffi.new("void **")
    length = ffi.new("int *")
    bad_rule = ffi.new("int *")
    rc = lib.lxrun_seccomp_compile(profile, program, length, bad_rule)
    if rc < 0:
        which = f" at {resolved.rules[bad_rule[0]].name}" if bad_rule[0] >= 0 else ""
        raise SpecError("seccomp", f"libseccomp refused the profile{which}: {os.strerror(-rc)}", path=path, errno=-rc)
    return Filter(ffi.gc(program[0], lib.lxrun_seccomp_free), length[0])
