"""What a task sees and returns, on every backend: exit codes, signals, streams, env, workdir, volumes, hostname."""

from __future__ import annotations

import os
import shutil
import signal
import stat
from pathlib import Path

import pytest

from lxrun import TaskSpec
from lxrun.backends.base import TaskHandle
from lxrun.errors import CommandNotExecutable, CommandNotFound, SpecError, Unsupported
from lxrun.layout import Layout
from lxrun.spec import Volume
from lxrun.store.layers import LayerStore
from lxrun.store.stacks import StackStore, StackVersion

from .conftest import backend_name, differs, run, run_on, sh


def test_exit_code_and_streams(backend: str, state_root: Path) -> None:
    result = sh(backend, state_root, "echo out; echo err >&2; exit 3")
    assert (result.stdout, result.stderr, result.exit_code, result.signal) == (b"out\n", b"err\n", 3, None)
    assert result.backend == backend_name(backend) and result.stack == "busybox@1"
    assert not result.timed_out and not result.oom_killed and not result.output_truncated


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_death_by_signal_is_128_plus_n(backend: str, state_root: Path, sig: signal.Signals) -> None:
    result = sh(backend, state_root, f"kill -{sig.name.removeprefix('SIG')} $$")
    assert (result.exit_code, result.signal) == (128 + sig, sig)


def test_exit_code_137_is_not_a_signal(backend: str, state_root: Path, request: pytest.FixtureRequest) -> None:
    differs(request, backend, {"docker": "Docker reports an exit code only, so 128+N is read as signal N"})
    result = sh(backend, state_root, "exit 137")
    assert (result.exit_code, result.signal) == (137, None)


def test_command_not_found_and_not_executable(backend: str, state_root: Path) -> None:
    with pytest.raises(CommandNotFound, match="exec no-such-tool: command not found"):
        run_on(backend, state_root, "no-such-tool")
    with pytest.raises(CommandNotExecutable, match="exec /etc/passwd: Permission denied"):
        run_on(backend, state_root, "/etc/passwd")


def test_stdin_from_a_descriptor_and_dev_null_by_default(backend: str, state_root: Path, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.write_text("line1\nline2\n")
    with data.open("rb") as stdin:
        assert run_on(backend, state_root, "wc", "-l", stdin=stdin.fileno()).stdout.strip() == b"2"
    assert run_on(backend, state_root, "cat").stdout == b""


def test_output_to_descriptors(backend: str, state_root: Path, tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as out_file, err.open("wb") as err_file:
        result = sh(
            backend, state_root, "echo direct; echo oops >&2", stdout=out_file.fileno(), stderr=err_file.fileno()
        )
    assert (result.stdout, result.stderr) == (None, None)
    assert (out.read_bytes(), err.read_bytes()) == (b"direct\n", b"oops\n")


def test_env_defaults_and_overrides(backend: str, state_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXRUN_HOST_ONLY", "leak")
    result = run_on(backend, state_root, "env", name="t1", env={"FOO": "bar baz", "PATH": "/usr/bin:/bin"})
    env = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    assert env["FOO"] == "bar baz"
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["HOSTNAME"] == "t1"
    assert env["HOME"] == "/root"
    assert "LXRUN_HOST_ONLY" not in env


def test_workdir_is_entered_and_created(backend: str, state_root: Path) -> None:
    assert run_on(backend, state_root, "pwd", workdir="/etc").stdout == b"/etc\n"
    assert run_on(backend, state_root, "pwd", workdir="/srv/new/app").stdout == b"/srv/new/app\n"


def test_hostname_defaults_to_name_then_id(backend: str, state_root: Path) -> None:
    assert run_on(backend, state_root, "hostname", name="job-7").stdout == b"job-7\n"
    assert run_on(backend, state_root, "hostname", name="job-7", hostname="box").stdout == b"box\n"
    result = run_on(backend, state_root, "hostname")
    assert result.stdout == f"{result.task_id}\n".encode()


def test_volumes_rw_ro_and_files(backend: str, state_root: Path, volume_dir: Path) -> None:
    rw, ro, config = volume_dir / "rw", volume_dir / "ro", volume_dir / "config.txt"
    rw.mkdir(mode=0o777)
    rw.chmod(0o777)
    ro.mkdir(mode=0o777)
    ro.chmod(0o777)
    (ro / "in").write_text("data")
    config.write_text("cfg")
    result = sh(
        backend,
        state_root,
        "echo hello > /out/file; cat /in/in; echo nope > /in/x || echo refused; cat /deep/config.txt",
        volumes=(
            Volume(str(rw), "/out"),
            Volume(str(ro), "/in", read_only=True),
            Volume(str(config), "/deep/config.txt"),
        ),
    )
    assert result.stdout == b"datarefused\ncfg"
    assert b"Read-only file system" in (result.stderr or b"")
    assert (rw / "file").read_text() == "hello\n"
    assert sorted(p.name for p in ro.iterdir()) == ["in"]


def test_writes_stay_in_the_task(backend: str, state_root: Path) -> None:
    layers = state_root / "layers"
    before = sorted(str(p) for p in layers.rglob("*"))
    result = sh(backend, state_root, "echo x > /etc/passwd; rm -rf /bin/ls; mkdir /new; cat /etc/passwd")
    assert result.stdout == b"x\n"
    assert sorted(str(p) for p in layers.rglob("*")) == before
    assert sh(backend, state_root, "test -e /new || test -e /bin/ls && echo fresh").stdout == b"fresh\n"


def test_many_at_once(backend: str, state_root: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: sh(backend, state_root, f"echo {n}"), range(24)))
    assert [r.stdout for r in results] == [f"{n}\n".encode() for n in range(24)]
    assert len({r.task_id for r in results}) == 24


def test_host_env_is_not_the_tasks(backend: str, state_root: Path) -> None:
    # The task's environment is the plan's, whatever the runner's own is.
    assert os.environ.get("HOME") is not None
    result = run_on(backend, state_root, "sh", "-c", "echo $HOME $USER")
    assert result.stdout == b"/root\n"


def test_a_diff_layer_deletes_and_adds_as_overlayfs_does(backend: str, state_root: Path) -> None:
    add_trimmed_stack(state_root)
    script = "cat /etc/motd; ls /usr/bin; test -e /etc/os-release || echo deleted"
    result = sh(backend, state_root, script, stack="trimmed")
    assert result.stdout == b"hello\nonly\ndeleted\n"


def add_trimmed_stack(root: Path) -> None:
    """busybox plus a diff that adds /etc/motd, deletes /etc/os-release (a whiteout) and replaces /usr/bin (opaque)."""
    layout = Layout(root)
    layers, stacks = LayerStore(layout), StackStore(layout)
    digest = "8" * 64
    if not layers.exists(digest):
        with layers.building() as work:
            tree = Path(work) / "rootfs"
            (tree / "etc").mkdir()
            (tree / "etc/motd").write_text("hello\n")
            os.mknod(tree / "etc/os-release", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
            (tree / "usr/bin").mkdir(parents=True)
            (tree / "usr/bin/only").write_text("")
            os.setxattr(tree / "usr/bin", "trusted.overlay.opaque", b"y")
            layers.commit(work, digest, parent=None, kind="diff", source="test")
    base = stacks.version("busybox", stacks.current_version("busybox"))
    stacks.add_version(StackVersion("trimmed", "1", (*base.layers, digest), base.env))
    stacks.promote("trimmed", "1")


def test_keep_keeps_the_upper_dir(backend: str, state_root: Path, request: pytest.FixtureRequest) -> None:
    differs(request, backend, {"docker": "the upper dir is Docker's own"}, raises=Unsupported)
    result = sh(backend, state_root, "echo kept > /root/file", keep=True)
    assert result.upper_dir is not None
    upper = Path(result.upper_dir)
    try:
        assert upper == state_root / "kept" / result.task_id / "upper"
        assert (upper / "root/file").read_text() == "kept\n"
        assert not (upper.parent / "work").exists()
    finally:
        shutil.rmtree(state_root / "kept" / result.task_id)


def test_tmp_is_capped(backend: str, state_root: Path) -> None:
    script = "dd if=/dev/zero of=/tmp/big bs=1M count=64 2>&1 | grep -c 'No space left'; du -m /tmp/big | cut -f1"
    result = sh(backend, state_root, script, disk=16 << 20)
    full, size = result.stdout.split()
    assert full == b"1" and int(size) <= 16


def test_a_name_is_held_by_one_task_at_a_time(backend: str, state_root: Path) -> None:
    refused: list[str] = []

    def start_a_twin(_handle: TaskHandle) -> None:
        with pytest.raises(SpecError, match=r"^name twin: is in use by task") as info:
            run(TaskSpec(stack="busybox", argv=["true"], name="twin"), backend=backend, root=state_root)
        refused.append(str(info.value))

    spec = TaskSpec(stack="busybox", argv=["true"], name="twin")
    assert run(spec, backend=backend, root=state_root, on_start=start_a_twin).exit_code == 0
    assert len(refused) == 1
    assert run(spec, backend=backend, root=state_root).exit_code == 0  # free again once it ended


def test_localhost_and_the_hostname_resolve(backend: str, state_root: Path, request: pytest.FixtureRequest) -> None:
    """Every task has its own /etc/hosts and /etc/hostname, whatever its stack ships (often nothing)."""
    result = sh(backend, state_root, "grep -E '^127.0.0.1\\s+localhost$' /etc/hosts; cat /etc/hostname", name="named")
    assert result.stdout == b"127.0.0.1\tlocalhost\nnamed\n"
    differs(request, backend, {"docker": "Docker maps the hostname in /etc/hosts on its own networks only"})
    assert sh(backend, state_root, "tail -1 /etc/hosts", name="named").stdout == b"127.0.1.1\tnamed\n"
