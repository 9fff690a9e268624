"""The child's failure records become errors naming the step (no root needed: no child is started)."""

from __future__ import annotations

import errno

import pytest

from lxrun.errors import ChildSetupError, CommandNotExecutable, CommandNotFound, SetupError
from lxrun.sandbox import helper
from lxrun.sandbox.mounts import host_steps, sandbox_steps


def request() -> helper.SpawnRequest:
    return helper.SpawnRequest(
        namespaces=frozenset(),
        host_steps=host_steps(["/l/base"], "/r/scratch"),
        steps=sandbox_steps("/r/scratch"),
        argv=["tool"],
        env={"PATH": "/bin"},
        cwd="/",
        stdin_fd=0,
        stdout_fd=1,
        stderr_fd=2,
    )


def record(step: int, err: int, path: bytes = b"", index: int = -1) -> object:
    rec = helper.ffi.new("struct lxrun_error *")
    rec.step, rec.err, rec.index = step, err, index
    helper.ffi.memmove(rec.path, path, len(path))
    return rec


def test_exec_not_found_is_127_with_the_path_searched() -> None:
    error = helper._child_error(record(helper.lib.LXRUN_STEP_EXEC, errno.ENOENT, b"tool"), request())
    assert isinstance(error, CommandNotFound)
    assert str(error).startswith("exec tool: command not found in the sandbox")
    assert "PATH=/bin" in str(error)


def test_exec_denied_is_126() -> None:
    error = helper._child_error(record(helper.lib.LXRUN_STEP_EXEC, errno.EACCES, b"/etc/passwd"), request())
    assert isinstance(error, CommandNotExecutable)
    assert str(error) == "exec /etc/passwd: Permission denied"


def test_mount_failures_name_the_mount_step_of_either_stage() -> None:
    req = request()
    sys_index = next(n for n, step in enumerate(req.host_steps) if step.target == "/sys")
    error = helper._child_error(record(helper.lib.LXRUN_STEP_MOUNT, errno.EPERM, b"sys", index=sys_index), req)
    assert isinstance(error, ChildSetupError)
    assert str(error) == "mount /sys sys: Operation not permitted"
    proc_index = len(req.host_steps) + next(n for n, step in enumerate(req.steps) if step.target == "/proc")
    error = helper._child_error(record(helper.lib.LXRUN_STEP_MOUNT, errno.EPERM, b"proc", index=proc_index), req)
    assert str(error) == "mount /proc proc: Operation not permitted"


@pytest.mark.parametrize(
    ("step", "name"),
    [
        ("LXRUN_STEP_HOSTNAME", "hostname"),
        ("LXRUN_STEP_WORKDIR", "workdir"),
        ("LXRUN_STEP_USERNS", "user namespace"),
        ("LXRUN_STEP_SECCOMP", "seccomp"),
        ("LXRUN_STEP_CAPS", "drop capabilities"),
    ],
)
def test_other_steps_are_named(step: str, name: str) -> None:
    error = helper._child_error(record(getattr(helper.lib, step), errno.EINVAL), request())
    assert error.step == name and error.exit_code == 125


def test_spawn_failure_is_a_setup_error() -> None:
    assert isinstance(helper._child_error(record(helper.lib.LXRUN_STEP_SPAWN, errno.ENOMEM), request()), SetupError)


def volume_request() -> helper.SpawnRequest:
    from lxrun.plan import PlannedVolume
    from lxrun.sandbox.mounts import volume_steps
    from lxrun.spec import Volume

    host, moves = volume_steps([PlannedVolume(Volume("/srv/link", "/data"), is_dir=True)], "/r/scratch", userns=True)
    base = request()
    return base.replace(host_steps=[*base.host_steps, *host], steps=[*base.steps, *moves])


@pytest.mark.parametrize(
    ("op", "code", "expected"),
    [
        (
            "host-volume",
            errno.EINVAL,
            "volume /srv/link:/data /srv/link: Invalid argument (this kernel can't idmap the filesystem it is on "
            "(tmpfs needs Linux 6.3): add the noidmap option (-v SRC:DST:noidmap, Volume(idmap=False)) for a plain "
            "bind, or run with --userns host)",
        ),
        ("host-volume", errno.ELOOP, "volume /srv/link:/data /srv/link: Too many levels of symbolic links (a symlink"),
        (
            "move",
            errno.EISDIR,
            "volume /srv/link:/data /data: Is a directory (a file can't be mounted over a directory)",
        ),
        ("move", errno.ENOTDIR, "volume /srv/link:/data /data: Not a directory (a directory can't be mounted over a"),
    ],
)
def test_volume_failures_say_why(op: str, code: int, expected: str) -> None:
    req = volume_request()
    index = next(n for n, step in enumerate([*req.host_steps, *req.steps]) if step.op == op)
    path = b"/srv/link" if op == "host-volume" else b"/data"
    error = helper._child_error(record(helper.lib.LXRUN_STEP_MOUNT, code, path, index=index), req)
    assert isinstance(error, ChildSetupError) and str(error).startswith(expected)
