"""`lxrun serve` and its relay client: the same `lxrun exec` through the server and without it gives the
same exit code, output, stderr lines and result file; bad requests get one line and change nothing; a
killed server leaves only what `lxrun gc` removes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lxrun import Runtime

from .conftest import HANG_GUARD, LXRUN, finish
from .test_recovery import NOTHING, leftovers, task_ids

CLIENT = str(Path(__file__).parents[2] / "lxrun" / "_lxrun_client")
NOBODY = 65534
GROUP = 4242  # a gid no one on this host is expected to have: the test gives it to the client itself


class Served:
    def __init__(self, process: subprocess.Popen[str], path: Path) -> None:
        self.process = process
        self.path = path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=HANG_GUARD)


def start_server(path: Path, *extra: str) -> Served:
    process = subprocess.Popen(
        [LXRUN, "serve", "--socket", str(path), *extra], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line == f"lxrun serve: listening at {path}\n", line + process.stderr.read()
    return Served(process, path)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory any uid may use (pytest's tmp_path is root's alone): the socket, clients' files."""
    path = Path(tempfile.mkdtemp(prefix="lxrun-serve-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def server(state_root: Path, workdir: Path) -> Iterator[Served]:
    served = start_server(workdir / "lxrun.sock")
    yield served
    assert served.stop() == 0
    assert not served.path.exists(), "the server left its socket"


@pytest.fixture(params=["cold", "pooled"])
def any_server(request: pytest.FixtureRequest, state_root: Path, workdir: Path) -> Iterator[Served]:
    """A server that runs tasks cold, and one with a pool of the busybox stack on the tests' root."""
    pools = ["--root", str(state_root), "--pool", "busybox=2"] if request.param == "pooled" else []
    served = start_server(workdir / "lxrun.sock", *pools)
    yield served
    assert served.stop() == 0
    assert not served.path.exists(), "the server left its socket"


def env_for(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "LXRUN_ROOT": str(root), **extra}


def through(server: Served, root: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = env_for(root, **kwargs.pop("env_extra", {}))
    argv = [CLIENT, "exec", "--socket", str(server.path), *args]
    return subprocess.run(argv, env=env, text=True, capture_output=True, check=False, timeout=HANG_GUARD, **kwargs)


def direct(root: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = env_for(root, **kwargs.pop("env_extra", {}))
    argv = [LXRUN, "exec", *args]
    return subprocess.run(argv, env=env, text=True, capture_output=True, check=False, timeout=HANG_GUARD, **kwargs)


def same(first: str, second: str) -> None:
    """Equal but for task ids (each run has its own)."""
    ids = re.compile(r"\b[0-9a-f]{12}\b")
    assert ids.sub("ID", first) == ids.sub("ID", second)


CASES = {
    "exit code and both streams": ["--stack", "busybox", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
    "a stack that is missing": ["--stack", "nope", "--", "true"],
    "an unknown option": ["--stack", "busybox", "--bogus", "true"],
    "a bad size": ["--stack", "busybox", "--memory", "lots", "true"],
    "a command not found": ["--stack", "busybox", "--", "no-such-command"],
    "a signal's exit code": ["--stack", "busybox", "--", "sh", "-c", "kill -9 $$"],
    "a variable from the caller": ["--stack", "busybox", "-e", "FROM_CALLER", "--", "sh", "-c", "echo $FROM_CALLER"],
    "a variable the caller lacks": ["--stack", "busybox", "-e", "NOT_SET_ANYWHERE", "true"],
    "the timeout's line": ["--stack", "busybox", "--timeout", "0.2", "--stop-timeout", "1", "--", "sleep", "5"],
    "help": ["--help"],
}


@pytest.mark.parametrize("args", CASES.values(), ids=CASES.keys())
def test_the_same_task_through_the_server_and_without(
    state_root: Path, any_server: Served, workdir: Path, args: list[str]
) -> None:
    env = {"FROM_CALLER": "caller's value"}
    relayed = through(any_server, state_root, *args, env_extra=env, cwd=workdir)
    local = direct(state_root, *args, env_extra=env, cwd=workdir)
    assert (relayed.returncode, relayed.stdout) == (local.returncode, local.stdout)
    same(relayed.stderr, local.stderr)


def test_a_pool_serves_its_stacks_tasks_warm_and_others_cold(state_root: Path, workdir: Path) -> None:
    served = start_server(workdir / "pooled.sock", "--root", str(state_root), "--pool", "busybox=1")
    warm = through(served, state_root, "--stack", "busybox", "--", "cat", "/etc/hostname")
    cold = through(served, state_root, "--stack", "busybox", "-w", "/tmp", "--", "cat", "/etc/hostname")
    assert (warm.returncode, cold.returncode, warm.stderr, cold.stderr) == (0, 0, "", "")
    assert served.stop() == 0
    assert served.process.stderr is not None
    log = served.process.stderr.read()
    # The cold one is the server's to know, and only the cold one: its id is its hostname.
    assert log.splitlines() == [f"lxrun serve: task {cold.stdout.strip()}: pool: ran cold: another working directory"]
    assert task_ids(state_root) == set()


def test_relative_paths_are_the_clients(state_root: Path, server: Served, workdir: Path) -> None:
    (workdir / "vars.env").write_text("FROM_FILE=file's value\n")
    args = ["--stack", "busybox", "--env-file", "vars.env", "--result-json", "result.json", "--"]
    relayed = through(server, state_root, *args, "sh", "-c", "echo $FROM_FILE; exit 5", cwd=workdir)
    assert (relayed.returncode, relayed.stdout, relayed.stderr) == (5, "file's value\n", "")
    by_server = json.loads((workdir / "result.json").read_text())
    local = direct(state_root, *args, "sh", "-c", "echo $FROM_FILE; exit 5", cwd=workdir)
    assert (local.returncode, local.stdout) == (5, "file's value\n")
    by_cli = json.loads((workdir / "result.json").read_text())
    varying = {"task_id", "wall_time", "cpu_user", "cpu_system", "peak_memory", "pids_peak"}
    assert {k: v for k, v in by_server.items() if k not in varying} == {
        k: v for k, v in by_cli.items() if k not in varying
    }
    assert by_server["exit_code"] == 5 and by_server["task_id"] != by_cli["task_id"]
    assert sorted(p.name for p in workdir.iterdir()) == ["lxrun.sock", "result.json", "vars.env"]


def test_result_json_refusals_are_the_same(state_root: Path, server: Served, workdir: Path) -> None:
    (workdir / "link.json").symlink_to("/etc/passwd")
    for destination in ("link.json", "missing-dir/r.json", "."):
        relayed = through(server, state_root, "--stack", "busybox", "--result-json", destination, "true", cwd=workdir)
        local = direct(state_root, "--stack", "busybox", "--result-json", destination, "true", cwd=workdir)
        assert relayed.returncode == local.returncode == 125
        assert relayed.stderr == local.stderr and relayed.stderr.startswith("lxrun: --result-json ")
    assert sorted(p.name for p in workdir.iterdir()) == ["link.json", "lxrun.sock"]


def test_stdin_with_interactive(state_root: Path, server: Served) -> None:
    relayed = through(server, state_root, "-i", "--stack", "busybox", "--", "tr", "a-z", "A-Z", input="hello\n")
    assert (relayed.returncode, relayed.stdout) == (0, "HELLO\n")
    without = through(server, state_root, "--stack", "busybox", "--", "cat", input="not read\n")
    assert (without.returncode, without.stdout) == (0, "")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_signals_reach_the_task_as_without_the_server(state_root: Path, server: Served, sig: int) -> None:
    script = 'trap "echo caught; exit 7" TERM INT HUP QUIT; echo ready; while :; do sleep 0.05; done'
    codes = []
    for argv in (
        [CLIENT, "exec", "--socket", str(server.path)],
        [LXRUN, "exec"],
    ):
        proc = subprocess.Popen(
            [*argv, "--stack", "busybox", "--", "sh", "-c", script],
            env=env_for(state_root),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(sig)
        codes.append((finish(proc), proc.stdout.read()))
    assert codes == [(7, "caught\n"), (7, "caught\n")]


def eventually(condition: Callable[[], bool]) -> bool:
    """Whether `condition` holds within HANG_GUARD (what the server does after a client has gone)."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def running_client(state_root: Path, server: Served) -> subprocess.Popen[str]:
    """A client whose task runs (it said so) until it is killed."""
    proc = subprocess.Popen(
        [CLIENT, "exec", "--socket", str(server.path), "--stack", "busybox", "--", "sh", "-c", "echo ready; sleep 60"],
        env=env_for(state_root),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_a_client_that_goes_away_takes_its_task_with_it(state_root: Path, server: Served) -> None:
    proc = running_client(state_root, server)
    assert len(task_ids(state_root)) == 1
    proc.kill()
    proc.wait()
    assert eventually(lambda: task_ids(state_root) == set())


def test_a_half_sent_frame_holds_up_no_other_client(state_root: Path, server: Served, workdir: Path) -> None:
    """One client stops halfway through a frame while its task runs: another client, served meanwhile
    by another worker, still has its signals passed on."""
    read_end, write_end = os.pipe()
    cwd = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
    null = os.open(os.devnull, os.O_RDWR)
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stalled.connect(str(server.path))
        argv = ["--stack", "busybox", "--", "sh", "-c", "echo ready; sleep 60"]
        fds = struct.pack("4i", null, write_end, null, cwd)
        stalled.sendmsg([request(argv, [f"LXRUN_ROOT={state_root}"])], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        os.close(write_end)
        with os.fdopen(read_end) as output:
            assert output.readline() == "ready\n"
            stalled.sendall(struct.pack("=II", ord("S"), 4)[:5])
            test_signals_reach_the_task_as_without_the_server(state_root, server, signal.SIGTERM)
    finally:
        stalled.close()  # gone: its task with it
        os.close(cwd)
        os.close(null)
    assert eventually(lambda: task_ids(state_root) == set())


def test_clients_served_at_once_and_no_directory_held(state_root: Path, server: Served, workdir: Path) -> None:
    """Clients at once get a worker each; between clients, no worker stays in a client's directory."""
    script = "echo ready; while [ ! -e /host/go ]; do sleep 0.05; done; echo {}"
    client = [CLIENT, "exec", "--socket", str(server.path), "--stack", "busybox", "-v", f"{workdir}:/host"]
    started = []
    for number in range(3):
        proc = subprocess.Popen(
            [*client, "--", "sh", "-c", script.format(number)],
            env=env_for(state_root),
            stdout=subprocess.PIPE,
            text=True,
            cwd=workdir,
        )
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        started.append(proc)
    (workdir / "go").touch()
    assert [(finish(proc), proc.stdout.read() if proc.stdout else "") for proc in started] == [
        (0, f"{number}\n") for number in range(3)
    ]
    threads = Path(f"/proc/{server.process.pid}/task")
    assert all(os.readlink(task / "cwd") != str(workdir) for task in threads.iterdir())


def test_lxrun_socket_in_the_environment_and_the_python_entry(state_root: Path, server: Served) -> None:
    by_env = subprocess.run(
        [CLIENT, "exec", "--stack", "busybox", "--", "echo", "hi"],
        env=env_for(state_root, LXRUN_SOCKET=str(server.path)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (by_env.returncode, by_env.stdout, by_env.stderr) == (0, "hi\n", "")
    # The Python command line, given a socket, hands the task to the native client.
    by_python = direct(state_root, "--socket", str(server.path), "--stack", "busybox", "--", "echo", "hi")
    assert (by_python.returncode, by_python.stdout, by_python.stderr) == (0, "hi\n", "")
    absent = direct(state_root, "--socket", str(server.path) + ".absent", "--stack", "busybox", "true")
    assert absent.returncode == 125
    assert absent.stderr == (
        f"lxrun: --socket {server.path}.absent: No such file or directory (is `lxrun serve` running there?)\n"
    )


def test_the_launcher_runs_the_python_command_line_without_a_socket(state_root: Path, workdir: Path) -> None:
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    shutil.copy(CLIENT, bin_dir / "lxrun")
    (bin_dir / "lxrun-python").symlink_to(LXRUN)
    launcher = str(bin_dir / "lxrun")
    args = ["exec", "--stack", "busybox", "--", "sh", "-c", "echo --socket elsewhere; exit 4"]
    launched = subprocess.run([launcher, *args], env=env_for(state_root), capture_output=True, text=True, check=False)
    assert (launched.returncode, launched.stdout, launched.stderr) == (4, "--socket elsewhere\n", "")
    listed = subprocess.run([launcher, "ps"], env=env_for(state_root), capture_output=True, text=True, check=False)
    assert listed.returncode == 0 and listed.stdout.startswith("ID")
    # With a socket, the launcher relays (no server here: the client's own error says it tried).
    for relayed_args in (["exec", "--socket", "nowhere.sock", "--stack", "busybox", "true"], ["exec", "-i", "true"]):
        relayed = subprocess.run(
            [launcher, *relayed_args],
            env=env_for(state_root, LXRUN_SOCKET="nowhere.sock"),
            capture_output=True,
            text=True,
            check=False,
        )
        assert relayed.returncode == 125 and relayed.stderr.startswith("lxrun: --socket nowhere.sock: No such file")


def raw_request(path: Path, data: bytes, fds: list[int]) -> tuple[int, str]:
    """Send `data` (with `fds`) as a client would, and read the exit frame the server answers with."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(path))
        conn.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else [])
        conn.shutdown(socket.SHUT_WR)
        kind, length = struct.unpack("=II", conn.recv(8, socket.MSG_WAITALL))
        reply = conn.recv(length, socket.MSG_WAITALL)
    assert kind == ord("x") and length == len(reply)
    (code,) = struct.unpack("=i", reply[:4])
    return code, reply[4:].decode()


def request(argv: list[str], env: list[str], umask: int = 0o22) -> bytes:
    strings = b"".join(item.encode() + b"\0" for item in [*argv, *env])
    payload = struct.pack("=III", len(argv), len(env), umask) + strings
    return struct.pack("=II", ord("Q"), len(payload)) + payload


def test_bad_requests_get_one_line_and_change_nothing(state_root: Path, server: Served, workdir: Path) -> None:
    cwd = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
    null = os.open(os.devnull, os.O_RDWR)
    good = request(["--stack", "busybox", "--", "touch", "/tmp/x"], [f"LXRUN_ROOT={state_root}"])
    try:
        answers = {
            "garbage": raw_request(server.path, b"GET / HTTP/1.0\r\n\r\n", []),
            "oversized": raw_request(server.path, struct.pack("=II", ord("Q"), 64 << 20), [null, null, null, cwd]),
            "too many fds": raw_request(server.path, good, [null, null, null, cwd, null]),
            "far too many fds": raw_request(server.path, good, [null, null, null, cwd] * 60),
            "too few fds": raw_request(server.path, good, [null, null, null]),
            "short": raw_request(server.path, good[:20], [null, null, null, cwd]),
            "bad counts": raw_request(server.path, request(["a"], []).replace(b"\1\0\0\0", b"\7\0\0\0", 1), [null] * 4),
            "bad umask": raw_request(server.path, request(["--help"], [], umask=0o7777), [null, null, null, cwd]),
        }
    finally:
        os.close(cwd)
        os.close(null)
    prefix = "lxrun serve: request: "
    wrong_fds = "must pass exactly 4 descriptors (stdin, stdout, stderr, working directory)"
    assert answers == {
        "garbage": (125, prefix + "is not an lxrun exec relay request"),
        "oversized": (125, prefix + "is larger than 4 MiB"),
        "too many fds": (125, prefix + wrong_fds),
        "far too many fds": (125, prefix + wrong_fds),
        "too few fds": (125, prefix + wrong_fds),
        "short": (125, prefix + "ended before its length"),
        "bad counts": (125, prefix + "has a malformed argument list"),
        "bad umask": (125, prefix + "has an invalid umask"),
    }
    assert task_ids(state_root) == set()
    after = through(server, state_root, "--stack", "busybox", "--", "echo", "still serving")
    assert (after.returncode, after.stdout) == (0, "still serving\n")


def test_a_stalled_request_times_out(server: Served) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(server.path))
        conn.sendall(b"Q\0\0\0")  # half a header, then nothing
        conn.settimeout(HANG_GUARD)
        reply = conn.recv(65536)
    assert reply[12:].decode() == "lxrun serve: request: was not sent within 5 s"


def as_user(uid: int, *groups: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", f"--groups={','.join(map(str, groups))}"]


def test_a_peer_without_rights_is_refused(state_root: Path, server: Served, workdir: Path) -> None:
    argv = [*as_user(NOBODY, NOBODY), CLIENT, "exec", "--socket", str(server.path), "--stack", "busybox", "true"]
    by_mode = subprocess.run(argv, env=env_for(state_root), capture_output=True, text=True, cwd=workdir, check=False)
    assert by_mode.returncode == 125
    assert by_mode.stderr == f"lxrun: --socket {server.path}: Permission denied\n"
    server.path.chmod(0o666)  # the socket's mode let through: the server's own check still refuses
    by_peer = subprocess.run(argv, env=env_for(state_root), capture_output=True, text=True, cwd=workdir, check=False)
    assert by_peer.returncode == 125
    assert by_peer.stderr == f"lxrun: serve {server.path}: uid {NOBODY} may not run tasks here (only root)\n"
    assert task_ids(state_root) == set()


def test_a_group_member_runs_tasks_and_owns_its_result_file(state_root: Path, workdir: Path) -> None:
    served = start_server(workdir / "group.sock", "--group", str(GROUP))
    try:
        stat = served.path.stat()
        assert (stat.st_mode & 0o777, stat.st_gid) == (0o660, GROUP)
        mine = workdir / "mine"
        mine.mkdir()
        os.chown(mine, NOBODY, NOBODY)
        client = [*as_user(NOBODY, GROUP), CLIENT, "exec", "--socket", str(served.path), "--stack", "busybox"]
        env = env_for(state_root)
        done = subprocess.run(
            [*client, "--result-json", "mine/r.json", "--", "sh", "-c", "echo member; exit 2"],
            env=env, capture_output=True, text=True, cwd=workdir, check=False,
        )  # fmt: skip
        assert (done.returncode, done.stdout, done.stderr) == (2, "member\n", "")
        result = mine / "r.json"
        assert json.loads(result.read_text())["exit_code"] == 2
        assert (result.stat().st_uid, result.stat().st_gid) == (NOBODY, NOBODY)
        # Where the client itself can't write, neither can its result file be made (the server is root).
        refused = subprocess.run(
            [*client, "--result-json", "r.json", "true"], env=env, capture_output=True, text=True, cwd="/", check=False
        )
        assert refused.returncode == 125
        assert refused.stderr == "lxrun: --result-json r.json: Permission denied (run lxrun as root)\n"
        assert not Path("/r.json").exists()
        outsider = subprocess.run(
            [*as_user(NOBODY, NOBODY), *client[len(as_user(NOBODY, GROUP)) :], "true"],
            env=env, capture_output=True, text=True, cwd=workdir, check=False,
        )  # fmt: skip
        assert outsider.returncode == 125 and "Permission denied" in outsider.stderr
    finally:
        assert served.stop() == 0


def test_stopping_the_server_ends_its_tasks(state_root: Path, server: Served) -> None:
    proc = running_client(state_root, server)
    assert server.stop() == 0
    assert finish(proc) == 137
    assert not server.path.exists() and task_ids(state_root) == set()


def test_a_killed_server_leaves_only_what_gc_removes(state_root: Path, workdir: Path) -> None:
    marker = "serve-crash-marker"
    served = start_server(workdir / "crash.sock")
    script = f"echo ready; sleep 61 # {marker}"
    proc = subprocess.Popen(
        [CLIENT, "exec", "--socket", str(served.path), "--stack", "busybox", "--", "sh", "-c", script],
        env=env_for(state_root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    ids = task_ids(state_root)
    assert len(ids) == 1
    served.process.kill()
    served.process.wait()
    assert finish(proc) == 125
    assert proc.stderr is not None
    assert proc.stderr.read() == (
        f"lxrun: --socket {served.path}: the server closed the connection before the task ended\n"
    )
    released = Runtime(state_root).gc().released
    assert ids <= set(released.tasks)
    assert leftovers(state_root, marker, ids) == NOTHING
    # The socket it left is taken over by the next server.
    again = start_server(served.path)
    done = through(again, state_root, "--stack", "busybox", "--", "echo", "back")
    assert (done.returncode, done.stdout) == (0, "back\n")
    assert again.stop() == 0
