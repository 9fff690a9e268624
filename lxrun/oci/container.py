"""OCI containers on one state root: create, start, state, kill, delete (the library; lxrun/oci/cli.py parses).

A created container is a prepared sandbox (backends/prepared.py's kind) whose pid 1 already holds its
task: `create` sends it argv, environment, stdio and an O_PATH descriptor of `exec.fifo` in the
container's directory, and init blocks opening that FIFO for writing; `start` opens it for reading,
which lets init fork the command; end-of-file there means the command runs, a failure record that it
could not be exec'd (runc's exec fifo). `create` hands what the container holds (its task record,
cgroup) over to the container: they are named by its sandbox id, so `delete` (or `lxrun gc`, when the
engine that created it is gone) releases them. Pid 1 is detached: it outlives `create` and the engine's
subreaper inherits it, as runc's init.

<root>/oci/<id>/state.json: what `state` reports (the status is read from pid 1 and the FIFO).
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import os
import time

from lxrun import plainjson as json
from lxrun import signals as signal
from lxrun.errors import ChildSetupError, LxrunError, SpecError, host_errors
from lxrun.oci.hooks import run_hooks, saved_hooks
from lxrun.state import new_record, read_record, runner_start, task_cgroup_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxrun.layout import Layout
    from lxrun.oci.config import Bundle
    from lxrun.sandbox import helper

OCI_VERSION = "1.0.2"
CREATED, RUNNING, STOPPED, PAUSED = "created", "running", "stopped", "paused"
# runc's id rule, without `re`: its import is a millisecond of each of the engine's several calls.
ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
FIFO = "exec.fifo"
PAUSED_MARK = "paused"  # pause's note: the freezer file to read and what it reads when frozen (control.py)


class OciError(LxrunError):
    """What an OCI verb could not do; the message is runc's where engines read it."""


def container_dir(layout: Layout, container_id: str) -> str:
    valid = 0 < len(container_id) <= 1024 and ID_CHARACTERS.issuperset(container_id)
    if not valid or container_id in (".", ".."):
        raise SpecError("id", "must be letters, digits, '_', '.' or '-'", path=container_id)
    return f"{layout.root}/oci/{container_id}"


def load_state(layout: Layout, container_id: str) -> dict[str, Any]:
    directory = container_dir(layout, container_id)
    try:
        with open(f"{directory}/state.json") as file:
            data: dict[str, Any] = json.load(file)
    except FileNotFoundError as exc:
        raise OciError("container", "container does not exist", path=container_id) from exc
    except (OSError, ValueError) as exc:
        raise OciError("container", f"state cannot be read: {exc}", path=container_id) from exc
    return data


def _pid_alive(pid: int, start: int | None) -> bool:
    """pid 1 still runs: the same process (start time), not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] != "Z" and (start is None or int(fields[19]) == start)


def status(layout: Layout, data: dict[str, Any]) -> str:
    if not _pid_alive(data["pid"], data.get("pid_start")):
        return STOPPED
    directory = container_dir(layout, data["id"])
    if _frozen(directory):
        return PAUSED
    return CREATED if os.path.exists(f"{directory}/{FIFO}") else RUNNING


def _frozen(directory: str) -> bool:
    """The freezer file pause noted says frozen (read, not trusted: a thaw from elsewhere counts)."""
    try:
        with open(f"{directory}/{PAUSED_MARK}") as note:
            path, word = note.read().split("\n", 1)
        with open(path) as freezer:
            return freezer.read().strip() == word
    except (FileNotFoundError, ValueError):
        return False


def oci_state(layout: Layout, data: dict[str, Any]) -> dict[str, Any]:
    """The OCI state document (runtime-spec's state), as `runc state` prints it."""
    current = status(layout, data)
    return {
        "ociVersion": OCI_VERSION,
        "id": data["id"],
        "pid": data["pid"] if current != STOPPED else 0,
        "status": current,
        "bundle": data["bundle"],
        "rootfs": data["rootfs"],
        "created": data["created"],
        "owner": "",
        "annotations": data.get("annotations", {}),
    }


class Created:
    """A created container whose resources are still this process's (`resources`): `detach` hands them
    to the container (create's exit), closing them releases it (run's end, or a failure)."""

    def __init__(self, state: dict[str, Any], process: helper.SandboxProcess, resources: contextlib.ExitStack) -> None:
        self.state = state
        self.process = process
        self.resources = resources

    def detach(self) -> None:
        self.resources.pop_all()


def create(
    layout: Layout,
    container_id: str,
    bundle_dir: str,
    stdio: tuple[int, int, int] = (0, 1, 2),
    pid_file: str | None = None,
    console_socket: str | None = None,
    runner_pid: int | None = None,
) -> Created:
    """Create the container; `runner_pid` is who keeps it (the engine, create's parent: `lxrun gc`
    releases the container once that is gone), else this process."""
    from lxrun.oci.config import load

    directory = container_dir(layout, container_id)
    task_id = os.urandom(6).hex()
    bundle = load(bundle_dir, task_id, layout.seccomp_profiles)
    layout.ensure()
    resources = contextlib.ExitStack()
    try:
        with host_errors("container state", path=directory):
            os.makedirs(f"{layout.root}/oci", mode=0o711, exist_ok=True)
            try:
                os.mkdir(directory, 0o711)
            except FileExistsError as exc:
                raise OciError("create", "container with given ID already exists", path=container_id) from exc
        resources.callback(_remove_dir, directory)
        created = _create(
            layout, container_id, bundle, task_id, directory, stdio, console_socket, resources, runner_pid
        )
        if pid_file is not None:
            _write_atomically(pid_file, str(created.state["pid"]))
        return created
    except BaseException:
        resources.close()
        raise


def _create(
    layout: Layout,
    container_id: str,
    bundle: Bundle,
    task_id: str,
    directory: str,
    stdio: tuple[int, int, int],
    console_socket: str | None,
    resources: contextlib.ExitStack,
    runner_pid: int | None,
) -> Created:
    from lxrun.sandbox import helper
    from lxrun.sandbox.compose import Composer

    plan = bundle.plan
    runner = runner_pid or os.getpid()
    record = new_record(
        layout,
        task_id,
        {
            "id": task_id,
            "name": None,
            "stack": f"oci:{container_id}",
            "backend": "native",
            "runner_pid": runner,
            "runner_start": runner_start() if runner == os.getpid() else _start_of(runner),
            "created": time.time(),
            "cgroup": task_cgroup_name(task_id),
            "cgroup_parent": plan.cgroup_parent,
            "command": list(plan.argv),
            "layers": [],
            "network": plan.network.mode,
        },
    )
    # A callback, not a generator's context: a detached container's record must outlive this process.
    resources.callback(record.remove)
    composer = Composer(layout)
    if plan.cgroup_parent is not None and not composer.cgroups.make_parent(plan.cgroup_parent):
        plan = plan.replace(cgroup_parent=None)  # a manager that can't make it: lxrun's own parent (docs/oci.md)
        record.update(cgroup_parent=None)
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    resources.callback(ours.close)
    if bundle.seccomp_profile is not None and not os.path.exists(plan.seccomp):
        with host_errors("linux.seccomp", path=plan.seccomp):  # named after its content: written once
            os.makedirs(os.path.dirname(plan.seccomp), mode=0o700, exist_ok=True)
            _write_atomically(plan.seccomp, bundle.seccomp_profile.decode())
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        sandbox = composer.start(plan, (devnull, devnull, devnull), resources, task_fd=theirs.fileno(), detached=True)
    except ChildSetupError as exc:
        if exc.step != "rlimit":
            raise
        from lxrun.oci.tuning import TuningError

        raise TuningError("process.rlimits", exc.reason, path=exc.path, errno=exc.errno, hint=exc.hint) from exc
    finally:
        theirs.close()
        os.close(devnull)
    record.running_as(sandbox.process.pid)
    if bundle.terminal:  # from the container's devpts, so the sandbox comes first
        stdio = terminal(console_socket, resources, sandbox.process.pid, plan.user[0])
    if bundle.oom_score_adj is not None:
        from lxrun.oci import tuning

        tuning.set_oom_score_adj(sandbox.process.pid, bundle.oom_score_adj)  # before it has its task: inherited
    fifo = f"{directory}/{FIFO}"
    message = helper.task_message(plan.argv, plan.env)
    if message is None:
        raise SpecError("process", "args and env are more than lxrun hands a container")
    with host_errors("exec fifo", path=fifo):
        os.mkfifo(fifo, 0o600)
        os.chmod(fifo, 0o622)  # pid 1 opens it as the container's user (mkfifo's mode is under the umask)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        try:
            helper.send_task(ours, message, (*stdio, fifo_fd))
        finally:
            os.close(fifo_fd)
    state = {
        "id": container_id,
        "task_id": task_id,
        "pid": sandbox.process.pid,
        "pid_start": record.data.get("pid_start"),
        "bundle": bundle.path,
        "rootfs": plan.rootfs,
        "created": _rfc3339(time.time_ns()),
        "annotations": dict(bundle.annotations),
        "hooks": {kind: [hook.as_dict() for hook in hooks] for kind, hooks in bundle.hooks.items() if hooks},
        "caps": sorted(plan.caps),  # what `exec` gives a process that brings no capabilities of its own
        "seccomp": plan.seccomp,
        # What `exec` sets on a process that brings no rlimits of its own; its oom_score_adj always (runc's).
        "rlimits": [list(limit) for limit in plan.rlimits],
        "oom_score_adj": bundle.oom_score_adj,
    }
    _write_atomically(f"{directory}/state.json", json.dumps(state))
    creating = {**oci_state(layout, state), "status": "creating"}  # runtime-spec's, as runc reports it to them
    for kind in ("prestart", "createRuntime", "createContainer"):
        run_hooks(bundle.hooks[kind], creating, kind)
    if bundle.sysctl:
        from lxrun.oci.tuning import write_sysctls

        write_sysctls(sandbox.process.pid, bundle.sysctl)  # after the hooks, as runc: docker's moves eth0 in
    return Created(state, sandbox.process, resources)


def _start_of(pid: int) -> int | None:
    from lxrun.state import process_start

    return process_start(pid)


# Linux's <asm-generic/ioctls.h>: unlock a pty's replica; open it from its master (no path looked up).
TIOCSPTLCK, TIOCGPTPEER = 0x40045431, 0x5441


def terminal(console_socket: str | None, resources: contextlib.ExitStack, pid: int, uid: int) -> tuple[int, int, int]:
    """A pty of the container's own devpts (its /dev/pts/N, as runc's: `tty` names it inside), opened
    through its pid 1's root, owned by the process's user and devpts's tty group (as runc's); its master
    goes to the engine over `console_socket` (SCM_RIGHTS, as runc)."""
    if console_socket is None:
        raise SpecError("process.terminal", "needs --console-socket", hint="give the engine's console socket")
    import array
    import fcntl
    import socket
    import stat
    import struct

    ptmx = f"/proc/{pid}/root/dev/pts/ptmx"
    with host_errors("container pty", path=ptmx):
        master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            device = os.fstat(master)
            if not stat.S_ISCHR(device.st_mode) or (os.major(device.st_rdev), os.minor(device.st_rdev)) != (5, 2):
                raise OSError(errno_codes.ENOTTY, "not the container's devpts ptmx")
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            replica = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            resources.callback(os.close, replica)
            os.fchown(replica, uid, -1)
        except BaseException:
            os.close(master)
            raise
    try:
        with host_errors("console socket", path=console_socket), socket.socket(socket.AF_UNIX) as conn:
            conn.connect(console_socket)
            conn.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])
    finally:
        os.close(master)
    return replica, replica, replica


def start(layout: Layout, container_id: str) -> dict[str, Any]:
    """Let the created container's command run; raises the exec failure if it could not start."""
    data = load_state(layout, container_id)
    current = status(layout, data)
    if current != CREATED:
        raise OciError("start", f"cannot start a container that is {current}", path=container_id)
    fifo = f"{container_dir(layout, container_id)}/{FIFO}"
    record = _await_exec(fifo, data["pid"])
    with contextlib.suppress(FileNotFoundError):
        os.unlink(fifo)
    if record:
        raise exec_failure("start", record)
    run_hooks(saved_hooks(data, "startContainer"), oci_state(layout, data), "startContainer")
    run_hooks(saved_hooks(data, "poststart"), oci_state(layout, data), "poststart", fatal=False)
    return data


def exec_failure(verb: str, record: bytes) -> LxrunError:
    """Init's (or exec's) failure record as the error to raise: a command that could not be exec'd in
    runc's words, which engines read (docker's 127 and 126)."""
    from lxrun.sandbox import helper

    error = helper.init_error(record, {})
    if isinstance(error, ChildSetupError) and error.errno is not None:
        argv0 = error.path or ""
        if error.errno == errno_codes.ENOENT:
            reason = f'exec: "{argv0}": executable file not found in $PATH'
        else:
            reason = f'exec: "{argv0}": {os.strerror(error.errno).lower()}'
        failure = OciError(verb, reason)
        failure.__cause__ = error
        return failure
    return error


def _await_exec(fifo: str, pid: int) -> bytes:
    """Open the FIFO (pid 1 is blocked opening its end), then read to end-of-file: b"" when the command
    runs, else init's failure record. pid 1 dying first is an error, not a hang."""
    import select

    with host_errors("exec fifo", path=fifo):
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        pidfd = os.pidfd_open(pid)
    chunks: list[bytes] = []
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            ready = dict(poller.poll())
            if fd in ready:
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
            elif pidfd in ready:
                raise OciError("start", "container's init exited before its process started", path=fifo)
    finally:
        os.close(fd)
        os.close(pidfd)


def kill(layout: Layout, container_id: str, sig: int, all_processes: bool = False) -> None:
    data = load_state(layout, container_id)
    current = status(layout, data)
    if current == STOPPED:
        raise OciError("kill", "container not running", path=container_id)
    cgroup = container_cgroup(layout, data) if all_processes else None
    if cgroup is not None:
        cgroup.signal_all(sig)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(data["pid"], sig)
    if sig == signal.SIGKILL and current == PAUSED:
        from lxrun.oci.control import thaw

        thaw(layout, data)  # a frozen process dies only once thawed, as runc's kill


def container_cgroup(layout: Layout, data: dict[str, Any]) -> Any:
    from lxrun.cgroups import detect

    record = read_record(layout.task(data["task_id"])) or {}
    return detect().find(task_cgroup_name(data["task_id"]), record.get("cgroup_parent"))


def delete(layout: Layout, container_id: str, force: bool = False) -> None:
    """Release everything the container holds; a running one only with `force` (killed first)."""
    data = load_state(layout, container_id)
    current = status(layout, data)
    if current in (RUNNING, PAUSED) and not force:
        raise OciError("delete", f"cannot delete container {container_id} that is not stopped: {current}")
    release(layout, data)
    run_hooks(saved_hooks(data, "poststop"), oci_state(layout, data), "poststop", fatal=False)
    _remove_dir(container_dir(layout, container_id))


def release(layout: Layout, data: dict[str, Any]) -> None:
    """Kill what runs (pid 1 and its cgroup), remove the cgroup and the task record."""
    from lxrun.backends.leftovers import release_cgroup_task
    from lxrun.cgroups import detect

    if _pid_alive(data["pid"], data.get("pid_start")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(data["pid"], signal.SIGKILL)
    task_id = data["task_id"]
    release_cgroup_task(layout, detect(), task_id, read_record(layout.task(task_id)), dry_run=False)


def list_states(layout: Layout) -> list[dict[str, Any]]:
    try:
        names = sorted(os.listdir(f"{layout.root}/oci"))
    except FileNotFoundError:
        return []
    states = []
    for name in names:
        with contextlib.suppress(OciError):
            states.append(oci_state(layout, load_state(layout, name)))
    return states


def _write_atomically(path: str, text: str) -> None:
    staged = f"{path}.{os.getpid()}.tmp"
    with host_errors("write", path=path):
        with open(staged, "w") as file:
            file.write(text)
        os.rename(staged, path)


def _remove_dir(directory: str) -> None:
    """The container's directory holds files only (state.json, the FIFO, pause's note): no shutil import.
    Best effort, as shutil.rmtree(ignore_errors=True) was: an entry that will not go stays."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            with contextlib.suppress(OSError):
                os.unlink(f"{directory}/{name}")
        os.rmdir(directory)


def wait_status_code(status_value: int) -> int:
    """A wait status as the exit code runc run and docker give: the code, or 128+N for signal N."""
    if os.WIFSIGNALED(status_value):
        return 128 + os.WTERMSIG(status_value)
    return os.WEXITSTATUS(status_value)


def parse_signal(text: str) -> int:
    """TERM, SIGTERM, 15 -> 15 (runc's forms); SpecError otherwise."""
    import signal as signals

    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(signals.Signals[name])
    except KeyError as exc:
        raise SpecError("signal", "unknown signal", path=text) from exc


def _rfc3339(ns: int) -> str:
    seconds, fraction = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"
