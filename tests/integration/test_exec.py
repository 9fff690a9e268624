"""`lxrun.run` and `lxrun exec` on the busybox stack: output, exit codes, the sandbox's shape."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from lxrun.errors import ChildSetupError, CommandNotExecutable, CommandNotFound, SpecError, StackNotFound
from lxrun.spec import Volume

from .conftest import add_stack, run_task, sh

pytestmark = pytest.mark.v2


def test_output_is_captured_and_the_exit_code_returned(state_root: Path) -> None:
    result = sh(state_root, "echo out; echo err >&2; exit 3")
    assert (result.stdout, result.stderr, result.exit_code, result.signal) == (b"out\n", b"err\n", 3, None)
    assert result.stack == "busybox@1" and result.backend == "native"
    assert 0 < result.wall_time < 10


def test_death_by_signal_is_128_plus_n(state_root: Path) -> None:
    result = sh(state_root, "kill -KILL $$")
    assert (result.exit_code, result.signal) == (137, signal.SIGKILL)
    result = sh(state_root, "kill -SEGV $$")
    assert (result.exit_code, result.signal) == (139, signal.SIGSEGV)


def test_exit_code_137_is_not_a_signal(state_root: Path) -> None:
    result = sh(state_root, "exit 137")
    assert (result.exit_code, result.signal) == (137, None)


def test_init_is_pid_1_and_the_task_pid_2(state_root: Path) -> None:
    result = sh(state_root, "echo $$; tr '\\0' ' ' < /proc/1/cmdline")
    assert result.stdout == b"2\nlxrun-init sh -c echo $$; tr '\\0' ' ' < /proc/1/cmdline "


def test_orphans_are_reaped_by_init(state_root: Path) -> None:
    # A double fork leaves an orphan that dies at once; pid 1 must reap it, or it stays a zombie.
    script = "(sh -c 'exit 0' &); sleep 0.3; cat /proc/[0-9]*/stat"
    result = sh(state_root, script)
    states = [line.split(") ")[1].split()[0] for line in result.stdout.decode().splitlines()]
    assert "Z" not in states, result.stdout


def test_hostname_defaults_to_name_then_id(state_root: Path) -> None:
    assert run_task(state_root, "hostname", name="job-7").stdout == b"job-7\n"
    assert run_task(state_root, "hostname", name="job-7", hostname="box").stdout == b"box\n"
    result = run_task(state_root, "hostname")
    assert result.stdout == f"{result.task_id}\n".encode()


def test_host_processes_are_invisible(state_root: Path) -> None:
    result = sh(state_root, "ls /proc | grep -E '^[0-9]+$'")
    pids = {int(pid) for pid in result.stdout.split()}
    assert pids <= {1, 2, 3, 4, 5}, pids
    assert os.getpid() not in pids or os.getpid() <= 5


def test_only_loopback_and_it_is_up(state_root: Path) -> None:
    # As the conformance case: the client sends from a file (a pipe races the listener's EOF), and the
    # listener is waited for.
    script = (
        "ls /sys/class/net; echo over-lo > /tmp/message; nc -l -p 7777 & "
        "for i in $(seq 100); do nc 127.0.0.1 7777 </tmp/message 2>/dev/null && break; sleep 0.05; done; wait"
    )
    result = sh(state_root, script)
    assert result.stdout == b"lo\nover-lo\n"


def test_sandbox_filesystems(state_root: Path) -> None:
    result = sh(state_root, "cat /proc/mounts; ls /dev; touch /sys/x 2>&1; echo; touch /dev/x 2>&1")
    text = result.stdout.decode()
    mounts = {line.split()[1]: line.split() for line in text.splitlines() if line.count(" ") >= 5}
    assert mounts["/"][2] == "overlay"
    assert mounts["/proc"][2] == "proc"
    assert mounts["/tmp"][2] == "tmpfs"
    assert mounts["/dev/pts"][2] == "devpts"
    assert mounts["/dev/shm"][2] == "tmpfs"
    assert mounts["/sys"][3].startswith("ro,")
    for node in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout", "stderr"):
        assert f"\n{node}\n" in text, node
    assert "Read-only file system" in text


def test_dev_nodes_work(state_root: Path) -> None:
    result = sh(state_root, "head -c 16 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c; echo x > /dev/null; echo ok")
    assert result.stdout.split() == [b"16", b"8", b"ok"]


def layer_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "layers").rglob("*")):
        digest.update(str(path).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_writes_never_reach_the_layer(state_root: Path) -> None:
    before = layer_digest(state_root)
    result = sh(state_root, "echo x > /etc/passwd; rm -rf /bin/ls /usr; mkdir /new; echo y > /new/f; cat /etc/passwd")
    assert result.stdout == b"x\n"
    assert layer_digest(state_root) == before
    assert sh(state_root, "ls /new 2>&1; test -e /bin/ls && echo still").stdout.endswith(b"still\n")


def test_env_defaults_and_overrides(state_root: Path) -> None:
    result = run_task(state_root, "env", name="t1", env={"FOO": "bar", "PATH": "/usr/bin:/bin"})
    env = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    assert env["FOO"] == "bar"
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["HOSTNAME"] == "t1"
    assert env["HOME"] == "/root"


def test_workdir_is_entered_and_created(state_root: Path) -> None:
    assert run_task(state_root, "pwd", workdir="/etc").stdout == b"/etc\n"
    assert run_task(state_root, "pwd", workdir="/srv/new/app").stdout == b"/srv/new/app\n"


def test_workdir_that_is_a_file_fails_at_its_step(state_root: Path) -> None:
    with pytest.raises(ChildSetupError, match=r"^workdir /etc/passwd: Not a directory"):
        run_task(state_root, "pwd", workdir="/etc/passwd")


def test_volumes_rw_and_ro(state_root: Path, volume_dir: Path) -> None:
    rw, ro = volume_dir / "rw", volume_dir / "ro"
    rw.mkdir(mode=0o777)
    rw.chmod(0o777)
    ro.mkdir(mode=0o777)
    ro.chmod(0o777)
    (ro / "in").write_text("data")
    result = sh(
        state_root,
        "echo hello > /out/file; cat /in/in; echo nope > /in/x 2>&1 || echo refused",
        volumes=(Volume(str(rw), "/out"), Volume(str(ro), "/in", read_only=True)),
    )
    assert result.stdout == b"datarefused\n"
    assert b"Read-only file system" in (result.stderr or b"")
    assert (rw / "file").read_text() == "hello\n"
    assert sorted(p.name for p in ro.iterdir()) == ["in"]
    # Written by the task's root: the volume is idmapped, so on disk that is root (test_volumes.py).
    owner = (rw / "file").stat()
    assert (owner.st_uid, owner.st_gid) == (0, 0)


def test_file_volume_and_missing_target_dirs(state_root: Path, volume_dir: Path) -> None:
    source = volume_dir / "config.txt"
    source.write_text("cfg")
    result = run_task(state_root, "cat", "/deep/new/config.txt", volumes=(Volume(str(source), "/deep/new/config.txt"),))
    assert result.stdout == b"cfg"


def test_volume_target_through_an_absolute_symlink_stays_inside(state_root: Path, tmp_path: Path) -> None:
    # A layer's absolute symlink (like Debian's /var/run -> /run) must resolve inside the sandbox:
    # resolved on the host, this mount and its mkdir -p would land in the host's /run.
    add_stack(state_root, "linked", {"escape": Path("/run")})
    source = tmp_path / "v"
    source.mkdir()
    (source / "f").write_text("v")
    outside = Path("/run/lxrun-escape-test")
    assert not outside.exists()
    result = sh(
        state_root,
        "cat /escape/lxrun-escape-test/data/f; ls -d /run/lxrun-escape-test/data",
        stack="linked",
        volumes=(Volume(str(source), "/escape/lxrun-escape-test/data"),),
    )
    assert result.stdout == b"v/run/lxrun-escape-test/data\n"
    assert not outside.exists()


def test_a_dangling_symlink_target_is_an_error_not_an_escape(state_root: Path, tmp_path: Path) -> None:
    add_stack(state_root, "dangling", {"nowhere": Path("/lxrun-nonexistent-dir")})
    with pytest.raises(ChildSetupError, match=r"^volume .*:/nowhere/data /nowhere: No such file or directory"):
        run_task(state_root, "true", stack="dangling", volumes=(Volume(str(tmp_path), "/nowhere/data"),))
    assert not Path("/lxrun-nonexistent-dir").exists()


def test_missing_volume_source_is_a_spec_error(state_root: Path) -> None:
    with pytest.raises(SpecError, match="source does not exist on the host"):
        run_task(state_root, "true", volumes=(Volume("/nonexistent/lxrun", "/x"),))


def test_a_busy_runners_descriptors_stay_out_of_the_task(state_root: Path) -> None:
    """A runner holds hundreds of descriptors, some inheritable: the stages keep only the task's own,
    whatever numbers they have (the task's pipes then come after all the runner's)."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(600)]
    try:
        for fd in held[::2]:
            os.set_inheritable(fd, True)
        results = [run_task(state_root, "ls", "/proc/self/fd", stdin=held[-1]) for _ in range(3)]
    finally:
        for fd in held:
            os.close(fd)
    # ls's own directory descriptor is 3; stdin is the runner's highest descriptor, handed on as 0.
    assert [(result.exit_code, result.stdout.split()) for result in results] == [(0, [b"0", b"1", b"2", b"3"])] * 3


def test_stdin_descriptor(state_root: Path, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.write_text("line1\nline2\n")
    with data.open("rb") as stdin:
        result = run_task(state_root, "wc", "-l", stdin=stdin.fileno())
    assert result.stdout.strip() == b"2"
    assert run_task(state_root, "cat").stdout == b""  # default stdin is /dev/null


def test_output_to_a_descriptor(state_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    with target.open("wb") as out:
        result = sh(state_root, "echo direct", stdout=out.fileno())
    assert result.stdout is None
    assert target.read_bytes() == b"direct\n"


def test_command_not_found_and_not_executable(state_root: Path) -> None:
    with pytest.raises(CommandNotFound, match="exec no-such-tool: command not found"):
        run_task(state_root, "no-such-tool")
    with pytest.raises(CommandNotExecutable, match="exec /etc/passwd: Permission denied"):
        run_task(state_root, "/etc/passwd")


def test_unknown_stack(state_root: Path) -> None:
    with pytest.raises(StackNotFound, match="stack nope: not found"):
        run_task(state_root, "true", stack="nope")
    with pytest.raises(StackNotFound, match="has no version 9"):
        run_task(state_root, "true", stack="busybox@9")


def test_keep_keeps_the_upper_dir(state_root: Path) -> None:
    result = sh(state_root, "echo kept > /root/file", keep=True)
    assert result.upper_dir is not None
    upper = Path(result.upper_dir)
    try:
        assert upper == state_root / "kept" / result.task_id / "upper"
        assert (upper / "root/file").read_text() == "kept\n"
        assert not (upper.parent / "work").exists()
    finally:
        shutil.rmtree(state_root / "kept" / result.task_id)


def test_dev_is_a_tmpfs_of_the_tasks_own_with_fifos_and_mqueue(state_root: Path) -> None:
    script = (
        "grep -E ' /dev(/mqueue)? ' /proc/mounts | cut -d' ' -f2,3; "
        "mkfifo /dev/fifo && test -p /dev/fifo && echo fifo; touch /dev/mqueue/q && grep -o QSIZE /dev/mqueue/q"
    )
    result = sh(state_root, script)
    lines = result.stdout.decode().splitlines()
    assert lines[:2] == ["/dev tmpfs", "/dev/mqueue mqueue"], lines
    assert "fifo" in lines and "QSIZE" in lines, lines  # a POSIX message queue, as a file of the task's mqueue fs
    # The queue is the task's ipc namespace's: the next task's /dev/mqueue is empty.
    assert sh(state_root, "ls /dev/mqueue").stdout == b""


def test_each_task_owns_its_root_dev_and_etc_files_whichever_range_it_drew(state_root: Path) -> None:
    # One Runtime: the second task's host steps are the first's, built once, with another uid range.
    script = "stat -c '%n %u:%g' / /dev /dev/null /etc/hosts; grep -o '^ *0 *[0-9]*' /proc/self/uid_map"
    results = [sh(state_root, script) for _ in range(2)]
    for result in results:
        lines = result.stdout.decode().splitlines()
        assert lines[:4] == ["/ 0:0", "/dev 0:0", "/dev/null 0:0", "/etc/hosts 0:0"], lines
    ranges = {result.stdout.split()[-1] for result in results}
    assert len(ranges) == 2, ranges


def test_dev_shows_nothing_of_the_host_disk(state_root: Path) -> None:
    result = sh(state_root, "grep ' /dev ' /proc/self/mountinfo")
    fields = result.stdout.decode().split()
    assert fields[3] == "/" and fields[fields.index("-") + 1] == "tmpfs", fields  # not a bind of a host dir
    assert str(state_root) not in result.stdout.decode()
