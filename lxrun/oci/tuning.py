"""What lxrun-oci sets on a container's processes from the host, as runc does: process.rlimits on exec's
process (a container's pid 1 takes its own in the sandbox), process.oomScoreAdj (on pid 1 at create, which
its command inherits; on exec's process), and linux.sysctl (written at create in the container's own
namespaces, before its command starts).

config.py decides what is allowed (the sysctls of the container's own namespaces only); this applies it.
A value this host won't take (a hard limit above the caller's, an oom_score_adj below it: both need
CAP_SYS_RESOURCE) is an OciError naming the field, as runc fails.
"""

from __future__ import annotations

import contextlib
import os
import resource  # here, not where used: exec's child sets limits inside the container's root

from lxrun.errors import LxrunError, host_errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Read by the kernel from the writer's own namespaces: /proc/sys/net from its network namespace, the ipc
# settings and fs.mqueue from its ipc namespace, kernel.domainname from its uts namespace. Not the mount
# namespace: the container's /proc/sys is read-only, the host's /proc serves.
SYSCTL_NAMESPACES = ("ipc", "uts", "net")


class TuningError(LxrunError):
    """A container's process setting the host refused; `step` is the config field."""


def set_rlimits(limits: Sequence[tuple[str, int, int]]) -> None:
    """Each (RLIMIT_NAME, soft, hard) on this process (`exec`'s child, still root; a container's pid 1
    takes its own in the sandbox: SandboxPlan.rlimits)."""
    for name, soft, hard in limits:
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except OSError as exc:
            hint = "raising a hard limit above lxrun-oci's own needs CAP_SYS_RESOURCE" if exc.errno == 1 else None
            raise TuningError(
                "process.rlimits", f"cannot set soft {soft} hard {hard}: {exc.strerror}", path=name, hint=hint
            ) from exc


def set_oom_score_adj(pid: int | str, value: int | None) -> None:
    """/proc/<pid>/oom_score_adj ("self" for this process); None leaves it as inherited."""
    if value is None:
        return
    path = f"/proc/{pid}/oom_score_adj"
    try:
        with open(path, "w") as file:
            file.write(str(value))
    except OSError as exc:
        hint = "a value below lxrun-oci's own needs CAP_SYS_RESOURCE" if exc.errno in (1, 13) else None
        raise TuningError("process.oomScoreAdj", f"cannot set {value}: {exc.strerror}", path=path, hint=hint) from exc


def write_sysctls(pid: int, values: Mapping[str, str]) -> None:
    """Write each /proc/sys path below the dots in pid 1's namespaces: a forked child enters them (this
    process stays where it is) and reports the first failure on a pipe as `<index> <errno>` (index -1:
    entering the namespaces)."""
    if not values:
        return
    with contextlib.ExitStack() as opened:
        namespaces = []
        with host_errors("linux.sysctl", path=f"/proc/{pid}/ns", error=TuningError):
            for kind in SYSCTL_NAMESPACES:
                namespaces.append((os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), kind))
                opened.callback(os.close, namespaces[-1][0])
            reader, writer = os.pipe2(os.O_CLOEXEC)
        report = opened.enter_context(os.fdopen(reader, "rb"))
        with os.fdopen(writer, "wb"):  # closed here once forked (the child leaves by _exit)
            child = os.fork()
            if child == 0:
                _write_in_child(namespaces, list(values.items()), writer)
        failure = report.read().decode().split()
        os.waitpid(child, 0)
    if failure:
        index, errno = int(failure[0]), int(failure[1])
        paths = list(values)
        where = f"/proc/{pid}/ns" if index < 0 else paths[index].translate(str.maketrans("./", "/."))
        raise TuningError.from_errno("linux.sysctl", errno, path=where)


def _write_in_child(namespaces: list[tuple[int, str]], values: list[tuple[str, str]], writer: int) -> None:
    """The forked child: never returns."""
    from lxrun.sandbox import helper

    index = -1
    try:
        for fd, kind in namespaces:
            helper.enter_namespace(fd, kind)
        for path, value in values:
            index += 1
            fd = os.open(f"/proc/sys/{path}", os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
    except OSError as exc:
        os.write(writer, f"{index} {exc.errno}".encode())
    except LxrunError as exc:  # entering a namespace
        os.write(writer, f"{index} {exc.errno or 22}".encode())
    finally:
        os._exit(0)
