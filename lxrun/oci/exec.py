"""`lxrun-oci exec`: a second process in a running container (docker exec, podman exec).

This process, single-threaded, opens what it needs on the host first (the container's namespaces,
its cgroup's join files, the pid file), then enters the container's namespaces itself and forks: the
child is born in the container's pid namespace, joins its cgroup, takes its rlimits and oom_score_adj
(lxrun/oci/tuning.py) and becomes its process through the helper (lxrun_exec_in_sandbox: user,
capabilities, no_new_privs, seccomp, exec), reporting a failure over a close-on-exec pipe. Detached
(-d) this process leaves once the command runs (the engine's subreaper inherits it, as with runc);
else it waits and exits with its code.
"""

from __future__ import annotations

import fcntl
import os
import termios  # here, not in the child: after setns into the container's mounts the host's stdlib is gone

from lxrun import plainjson as json
from lxrun.errors import SpecError, host_errors
from lxrun.oci.config import capabilities, env_map, group_ids, rlimits
from lxrun.oci.container import (
    RUNNING,
    OciError,
    container_cgroup,
    exec_failure,
    load_state,
    status,
    terminal,
    wait_status_code,
)
from lxrun.oci.tuning import set_oom_score_adj, set_rlimits
from lxrun.sandbox import helper
from lxrun.sandbox.compose import Composer

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    from typing import Any

    from lxrun.layout import Layout

# The order runc enters them in; the mount namespace last (it changes this process's root).
NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")


def process_from(
    path: str | None, args: list[str], env: list[str], cwd: str | None, user: str | None
) -> dict[str, Any]:
    """The process to run: --process FILE (runtime-spec's process object), else the command line's."""
    if path is not None:
        try:
            with open(path) as file:
                process: dict[str, Any] = json.load(file)
        except (OSError, ValueError) as exc:
            raise SpecError("process", f"cannot be read: {exc}", path=path) from exc
        return process
    if not args:
        raise SpecError("process.args", "give a command, or --process FILE")
    uid, _, gid = (user or "0").partition(":")
    return {
        "args": args,
        "env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "cwd": cwd or "/",
        "user": {"uid": int(uid), "gid": int(gid or 0)},
    }


def exec_process(
    layout: Layout,
    container_id: str,
    process: dict[str, Any],
    resources: contextlib.ExitStack,
    detach: bool = False,
    pid_file: str | None = None,
    console_socket: str | None = None,
) -> int:
    data = load_state(layout, container_id)
    if status(layout, data) != RUNNING:
        raise OciError("exec", "cannot exec in a stopped or not yet started container", path=container_id)
    argv = process.get("args")
    if not isinstance(argv, list) or not argv or not all(isinstance(arg, str) for arg in argv):
        raise SpecError("process.args", "must be a non-empty list of strings")
    env = env_map(process.get("env") or [])
    user = process.get("user") or {}
    caps = capabilities({"process": process}) if process.get("capabilities") else frozenset(data.get("caps", ()))
    seccomp = Composer(layout).seccomp.filter_for(data.get("seccomp", "default"), caps)
    if "rlimits" in process:
        limits = rlimits(process["rlimits"] if isinstance(process["rlimits"], list) else [None])
    else:
        limits = tuple((name, soft, hard) for name, soft, hard in data.get("rlimits", ()))
    tuning = (limits, data.get("oom_score_adj"))
    pid = data["pid"]
    uid = int(user.get("uid", 0))
    stdio = terminal(console_socket, resources, pid, uid) if process.get("terminal") else (0, 1, 2)
    with host_errors("enter container", path=f"/proc/{pid}/ns"):
        namespaces = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), name) for name in NAMESPACES]
        cgroup = container_cgroup(layout, data)
        joins = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in (cgroup.join_files() if cgroup else ())]
        pid_fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644) if pid_file else -1
    for fd, kind in namespaces:
        helper.enter_namespace(fd, kind)
        os.close(fd)
    reader, writer = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        _child(argv, env, process, user, caps, seccomp, stdio, joins, tuning, writer)
    os.close(writer)
    with os.fdopen(reader, "rb") as errors:
        record = errors.read()
    if record:
        os.waitpid(child, 0)
        if record.startswith(b"!"):
            raise OciError("exec", record[1:].decode(errors="replace"), path=container_id)
        raise exec_failure("exec", record)
    if pid_fd >= 0:
        os.write(pid_fd, str(child).encode())
        os.close(pid_fd)
    if detach:
        return 0
    _, wait_status = os.waitpid(child, 0)
    return wait_status_code(wait_status)


def _child(
    argv: list[str],
    env: dict[str, str],
    process: dict[str, Any],
    user: dict[str, Any],
    caps: frozenset[str],
    seccomp: helper.Filter | None,
    stdio: tuple[int, int, int],
    joins: list[int],
    tuning: tuple[tuple[tuple[str, int, int], ...], int | None],
    writer: int,
) -> None:
    """The forked process (in the container's pid namespace): never returns."""
    try:
        for fd in joins:
            os.write(fd, b"0")
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
        os.setsid()
        if process.get("terminal"):
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        set_rlimits(tuning[0])
        set_oom_score_adj("self", tuning[1])
        uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
        groups = group_ids(user.get("additionalGids") or [])
        helper.exec_in_sandbox(argv, env, process.get("cwd") or "/", (uid, gid), caps, seccomp, writer, groups)
    except BaseException as exc:  # before the helper: a record of our own kind ("!" and the reason)
        os.write(writer, b"!" + str(exc).encode())
    finally:
        os._exit(125)
