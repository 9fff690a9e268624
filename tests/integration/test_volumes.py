"""Volumes for real: idmapped into the task's user namespace by default (on-disk 0 is the task's root),
plain binds with `noidmap` or `--userns host`, and the targets and shapes refused up front or with a
clear error. Sources live under /var/tmp: ext4 here and in the v2 guest, whose tmpfs (Linux 6.1) can't
be idmapped."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxrun.errors import ChildSetupError, SpecError
from lxrun.sandbox.userns import RANGE, load_pool
from lxrun.spec import Security, Volume

from .conftest import lxrun_cli, run_task, sh


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A root-owned 0755 directory on disk, as /srv is: no task uid may write it without idmapping."""
    path = Path(tempfile.mkdtemp(prefix="lxrun-vol-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.v2
def test_the_readme_example_writes_as_the_volume_owners_root(state_root: Path, host_dir: Path) -> None:
    src, out = host_dir / "in", host_dir / "out"
    src.mkdir()
    out.mkdir()
    (src / "data").write_text("input\n")
    assert (out.stat().st_uid, out.stat().st_mode & 0o777) == (0, 0o755)
    command = ["exec", "--stack", "busybox", "-v", f"{src}:/in:ro", "-v", f"{out}:/out", "-w", "/work"]
    done = lxrun_cli(state_root, *command, "--", "sh", "-c", "cat /in/data > /out/result; ls -ln /out/result")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[2:4] == ["0", "0"]  # the task's root owns what it wrote, as it sees it
    result = out / "result"
    assert (result.read_text(), result.stat().st_uid, result.stat().st_gid) == ("input\n", 0, 0)
    # The next task has another uid range; to it too the file belongs to its root, so it may append.
    done = lxrun_cli(state_root, *command, "--", "sh", "-c", "echo more >> /out/result")
    assert done.returncode == 0, done.stderr
    assert (result.read_text(), result.stat().st_uid) == ("input\nmore\n", 0)


@pytest.mark.v2
def test_a_root_only_directory_reads_through_a_read_only_volume(state_root: Path, host_dir: Path) -> None:
    secret = host_dir / "secret"
    secret.mkdir(mode=0o700)
    (secret / "key").write_text("k")
    (secret / "key").chmod(0o600)
    result = sh(state_root, "cat /s/key; echo x > /s/new", volumes=(Volume(str(secret), "/s", read_only=True),))
    assert (result.stdout, result.exit_code) == (b"k", 1)
    assert b"Read-only file system" in (result.stderr or b"")
    assert sorted(p.name for p in secret.iterdir()) == ["key"]


@pytest.mark.v2
def test_ids_beyond_the_range_show_as_nobody_and_files_keep_their_owner(state_root: Path, host_dir: Path) -> None:
    (host_dir / "user").write_text("u")
    os.chown(host_dir / "user", 1000, 1000)
    (host_dir / "far").write_text("f")
    os.chown(host_dir / "far", RANGE + 5, RANGE + 5)
    result = sh(state_root, "stat -c '%n %u' /v/user /v/far", volumes=(Volume(str(host_dir), "/v"),))
    assert result.stdout == b"/v/user 1000\n/v/far 65534\n", result.stderr


@pytest.mark.v2
def test_noidmap_keeps_the_plain_bind(state_root: Path, host_dir: Path) -> None:
    out = host_dir / "out"
    out.mkdir()
    denied = sh(state_root, "echo x > /out/f", volumes=(Volume(str(out), "/out", idmap=False),))
    assert denied.exit_code != 0 and b"Permission denied" in (denied.stderr or b"")
    out.chmod(0o777)
    done = lxrun_cli(state_root, "exec", "--stack", "busybox", "-v", f"{out}:/out:rw,noidmap", "--", "touch", "/out/f")
    assert done.returncode == 0, done.stderr
    # Written as the task's root, which is an unprivileged uid of lxrun's pool on the host.
    pool, owner = load_pool(), (out / "f").stat().st_uid
    assert pool.uid_start <= owner < pool.uid_start + pool.ranges * RANGE


@pytest.mark.v2
def test_userns_host_binds_plainly(state_root: Path, host_dir: Path) -> None:
    (host_dir / "far").write_text("f")
    os.chown(host_dir / "far", RANGE + 5, 0)
    result = sh(
        state_root,
        "stat -c %u /v/far; touch /v/new",
        volumes=(Volume(str(host_dir), "/v"),),
        security=Security(userns="host"),
    )
    assert result.stdout == f"{RANGE + 5}\n".encode(), result.stderr
    assert (host_dir / "new").stat().st_uid == 0


@pytest.fixture
def ramfs_dir(host_dir: Path) -> Iterator[Path]:
    """A directory on ramfs, which no kernel can idmap (as tmpfs before Linux 6.3)."""
    subprocess.run(["mount", "-t", "ramfs", "lxrun-test", str(host_dir)], check=True)
    try:
        yield host_dir
    finally:
        subprocess.run(["umount", str(host_dir)], check=True)


@pytest.mark.v2
def test_a_filesystem_that_cant_be_idmapped_names_the_volume_and_the_opt_out(state_root: Path, ramfs_dir: Path) -> None:
    with pytest.raises(ChildSetupError) as caught:
        run_task(state_root, "true", volumes=(Volume(str(ramfs_dir), "/data"),))
    message = str(caught.value)
    assert message.startswith(f"volume {ramfs_dir}:/data {ramfs_dir}: ") and "\n" not in message
    assert "noidmap" in message and "--userns host" in message
    assert run_task(state_root, "true", volumes=(Volume(str(ramfs_dir), "/data", idmap=False),)).exit_code == 0


@pytest.mark.parametrize("target", ["/proc", "/proc/sys", "/proc/self/fd", "/dev", "/sys"])
def test_targets_the_sandbox_mounts_itself_are_refused(state_root: Path, host_dir: Path, target: str) -> None:
    done = lxrun_cli(state_root, "exec", "--stack", "busybox", "-v", f"{host_dir}:{target}", "--", "true")
    assert done.returncode == 125
    assert done.stderr.startswith(f"lxrun: volume {target}: ") and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.v2
def test_a_file_over_a_directory_and_a_directory_over_a_file_say_so(state_root: Path, host_dir: Path) -> None:
    (host_dir / "file").write_text("f")
    with pytest.raises(ChildSetupError, match=r"^volume .*:/etc /etc: Is a directory \(a file can't be mounted"):
        run_task(state_root, "true", volumes=(Volume(str(host_dir / "file"), "/etc"),))
    with pytest.raises(ChildSetupError, match=r"^volume .*:/etc/passwd /etc/passwd: Not a directory \(a directory"):
        run_task(state_root, "true", volumes=(Volume(str(host_dir), "/etc/passwd"),))


@pytest.mark.v2
def test_a_source_with_a_symlink_in_its_path_is_refused_with_the_resolved_path(
    state_root: Path, host_dir: Path
) -> None:
    (host_dir / "real").mkdir()
    (host_dir / "link").symlink_to(host_dir / "real")
    with pytest.raises(SpecError, match=rf"symlink.*give the resolved path {host_dir}/real\)$"):
        run_task(state_root, "true", volumes=(Volume(str(host_dir / "link"), "/data"),))
    result = run_task(state_root, "ls", "/data", volumes=(Volume(str(host_dir / "real"), "/data"),))
    assert result.exit_code == 0
