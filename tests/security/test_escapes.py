"""Multi-tenant isolation: from inside a task, every attempt here to reach the host, another task
or more of the machine than the task's limits give it must fail. Each runs tests/security/attempts.c
(built static, mounted read-only) with lxrun's default security: a private user namespace, docker's
capabilities, no_new_privs, the default seccomp profile, masked and read-only paths."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxrun import TaskSpec, Volume, run
from lxrun.spec import Limits, Security
from tests.conftest import require
from tests.integration.conftest import add_stack, sh

SOURCE = Path(__file__).with_name("attempts.c")


@pytest.fixture(scope="session")
def attempts() -> Iterator[Path]:
    """A directory holding the static attempts binary, readable by a task's unprivileged root."""
    require(shutil.which("gcc") is not None, "gcc is needed to build the escape attempts")
    directory = Path(tempfile.mkdtemp(prefix="lxrun-attempts-"))
    directory.chmod(0o755)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(directory / "attempts"), str(SOURCE)], check=True)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture(scope="session")
def host_marker() -> Iterator[Path]:
    """A file on the host, outside every layer and volume: seeing it from a task means an escape."""
    marker = Path(f"/lxrun-escape-marker-{os.getpid()}")
    marker.write_text("host")
    yield marker
    marker.unlink()


def attempt(root: Path, attempts: Path, name: str, *args: str, **kwargs: object) -> tuple[int, str]:
    volumes = (Volume(str(attempts), "/attempts", read_only=True), *kwargs.pop("volumes", ()))  # type: ignore[misc]
    spec = TaskSpec(
        stack=kwargs.pop("stack", "busybox"),
        argv=["/attempts/attempts", name, *args],  # type: ignore[arg-type]
        volumes=volumes,
        **kwargs,
    )  # type: ignore[arg-type]
    result = run(spec, root=root)
    output = (result.stdout or b"").decode() + (result.stderr or b"").decode()
    return result.exit_code, output


SIMPLE = [
    "umount", "kcore", "reboot", "sysrq", "set_clock", "mknod_disk", "raw_socket", "write_proc_sys", "write_sys",
    "root_cgroup", "keyctl", "bpf", "perf_event_open", "nested_userns", "fill_tmp", "setns", "open_by_handle_at",
    "userfaultfd", "sethostname_host",
]  # fmt: skip

# Attempts whose preconditions attempts.c checks, so that only the protection stops them; the security
# that takes the protection away and what the attempt then does (exit code, first word). mount and
# pivot_root need CAP_SYS_ADMIN in the task's user namespace; finit_module needs CAP_SYS_MODULE in the
# host's, and docker's profile refuses it without that capability. Past the block no module loads
# from a program's binary (ENOEXEC), or the kernel has no module support (ENOSYS). socket(AF_VSOCK)
# needs nothing: only docker's profile refuses it (where the host has vsock, as VMs do).
UNPROTECTED = {
    "mount": (Security(cap_add=["SYS_ADMIN"], seccomp="unconfined"), 1, "ESCAPED"),
    "pivot_root": (Security(cap_add=["SYS_ADMIN"], seccomp="unconfined"), 1, "ESCAPED"),
    "init_module": (Security(userns="host", cap_add=["SYS_MODULE"], seccomp="unconfined"), 3, "OTHER ERROR"),
    "vsock": (Security(seccomp="unconfined"), 1, "ESCAPED"),
}


@pytest.mark.parametrize("name", SIMPLE)
def test_attempt_is_blocked(state_root: Path, attempts: Path, name: str) -> None:
    code, output = attempt(state_root, attempts, name)
    assert (code, output.startswith("blocked")) == (0, True), output


def host_has_vsock() -> bool:
    try:
        socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("name", UNPROTECTED)
def test_attempt_is_refused_by_the_protection(state_root: Path, attempts: Path, name: str) -> None:
    """EPERM, the errno of the missing capability or of the profile: not one from an invalid call."""
    code, output = attempt(state_root, attempts, name)
    by_the_protection = output.startswith("blocked: ") and output.endswith(": Operation not permitted\n")
    assert (code, by_the_protection) == (0, True), output


@pytest.mark.parametrize("name", UNPROTECTED)
def test_attempt_gets_past_the_block_without_the_protection(state_root: Path, attempts: Path, name: str) -> None:
    """The control for the test above: the same attempt with the capability added and seccomp off."""
    security, exit_code, outcome = UNPROTECTED[name]
    modules_disabled = Path("/proc/sys/kernel/modules_disabled")  # absent without module support
    if name == "init_module" and modules_disabled.exists():
        require(modules_disabled.read_text() == "0\n", "kernel.modules_disabled is set: no root can load a module")
    if name == "vsock":
        require(host_has_vsock(), "this host has no vsock transport: AF_VSOCK fails unprotected too")
    code, output = attempt(state_root, attempts, name, security=security)
    assert (code, output.split(":")[0]) == (exit_code, outcome), output


def test_chroot_escape_through_an_open_descriptor(state_root: Path, attempts: Path, host_marker: Path) -> None:
    code, output = attempt(state_root, attempts, "chroot_fd_escape", str(host_marker))
    assert (code, output.startswith("blocked")) == (0, True), output


@pytest.mark.parametrize("name", ["ptrace_host", "kill_host"])
def test_host_processes_can_be_neither_traced_nor_killed(state_root: Path, attempts: Path, name: str) -> None:
    code, output = attempt(state_root, attempts, name, str(os.getpid()))
    assert (code, "No such process" in output) == (0, True), output


STATUS_FD = "4"  # native/protocol.h: LXRUN_INIT_STATUS_FD, pid 1's status pipe
# What a task needs to trace pid 1 even where pid 1 is non-dumpable: CAP_SYS_PTRACE in the host's user namespace.
TRACER = Security(userns="host", cap_add=["SYS_PTRACE"])


@pytest.mark.parametrize(
    "security",
    [Security(), Security(userns="host"), Security(cap_add=["SYS_PTRACE"])],
    ids=["private", "host", "private+SYS_PTRACE"],
)
def test_pid1_can_be_neither_traced_nor_read(state_root: Path, attempts: Path, security: Security) -> None:
    """lxrun-init runs as the task's user with the task's capabilities: only its being non-dumpable stops this.
    In a user namespace, CAP_SYS_PTRACE there is not enough: the task can't read init's sealed copy, so
    the kernel made init's memory the host user namespace's (as for runc's init)."""
    code, output = attempt(state_root, attempts, "trace_init", STATUS_FD, security=security)
    assert (code, output.count("blocked")) == (0, 4), output


def test_a_forged_status_record_changes_no_outcome(state_root: Path, attempts: Path) -> None:
    """A task that can write pid 1's status pipe claims exit 42, then exits 0: lxrun reports what the kernel says."""
    result = run(
        TaskSpec(
            stack="busybox",
            argv=["/attempts/attempts", "forge_status", STATUS_FD],
            volumes=(Volume(str(attempts), "/attempts", read_only=True),),
            security=TRACER,
        ),
        root=state_root,
    )
    assert (result.stdout, result.exit_code, result.signal) == (b"forged exit 42\n", 0, None), result.stderr


def test_pid1_runs_from_a_sealed_memfd(state_root: Path, attempts: Path) -> None:
    """/proc/1/exe names no host path, and even a task that may trace pid 1 can't write to the file."""
    code, output = attempt(state_root, attempts, "init_exe", security=TRACER)
    assert output.startswith("exe: /memfd:lxrun-init ") and "\nsealed\n" in output, output
    assert (code, "\nblocked: " in output) == (0, True), output


def test_the_task_itself_stays_dumpable(state_root: Path) -> None:
    """Non-dumpable is pid 1's alone: exec resets it, so the task's processes can read each other's /proc files."""
    # Until the child has exec'd sleep, its environ reads empty: try for a while (a non-dumpable one never reads).
    script = (
        "sleep 5 & n=0; until tr '\\0' '\\n' < /proc/$!/environ | grep -q '^PATH=' || [ $n -ge 200 ]; do"
        " sleep 0.01; n=$((n+1)); done; tr '\\0' '\\n' < /proc/$!/environ | grep -c '^PATH='; kill $!"
    )
    result = sh(state_root, script)
    assert (result.stdout, result.exit_code) == (b"1\n", 0), result.stderr


def test_the_hosts_environment_is_out_of_reach(state_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXRUN_HOST_SECRET", "s3cret")
    result = sh(state_root, "cat /proc/1/environ /proc/*/environ 2>/dev/null | tr '\\0' '\\n'")
    assert b"s3cret" not in (result.stdout or b"")
    assert b"lxrun-init" not in (result.stdout or b"")  # pid 1 is ours: its environment is the task's


def test_symlink_and_hardlink_tricks_against_a_read_only_volume(
    state_root: Path, attempts: Path, volume_dir: Path
) -> None:
    (volume_dir / "data").write_text("original")
    code, output = attempt(
        state_root, attempts, "ro_volume_links", "/ro", volumes=(Volume(str(volume_dir), "/ro", read_only=True),)
    )
    assert (code, output.count("blocked")) == (0, 3), output
    assert (volume_dir / "data").read_text() == "original"
    assert sorted(p.name for p in volume_dir.iterdir()) == ["data"]


def test_a_setuid_binary_gives_no_privilege(state_root: Path, attempts: Path) -> None:
    add_stack(state_root, "setuid", {"usr/local/bin/attempts-suid": ((attempts / "attempts").read_bytes(), 0o4755)})
    code, output = attempt(
        state_root,
        attempts,
        "setuid_binary",
        "/usr/local/bin/attempts-suid",
        stack="setuid",
        security=Security(user=(1000, 1000)),
    )
    assert (code, output.startswith("blocked")) == (0, True), output


def test_a_fork_bomb_hits_the_pids_limit_and_the_host_goes_on(state_root: Path) -> None:
    result = sh(
        state_root, "bomb() { bomb | bomb & }; bomb; sleep 1", limits=Limits(pids=50), timeout=3, stop_timeout=0
    )
    assert b"can't fork" in (result.stderr or b"")
    assert subprocess.run(["true"], check=False).returncode == 0


def test_exhausting_memory_kills_the_task_not_the_host(state_root: Path) -> None:
    result = sh(state_root, "tail /dev/zero", limits=Limits(memory=64 << 20), timeout=30)
    assert result.oom_killed and result.signal == 9


def test_the_default_set_is_dockers_and_nothing_is_ambient(state_root: Path) -> None:
    result = sh(state_root, "grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status; grep NoNewPrivs /proc/self/status")
    fields = dict(line.split(":\t") for line in (result.stdout or b"").decode().splitlines())
    assert fields["CapEff"] == fields["CapBnd"] == "00000000a80425fb"  # docker's 14 capabilities
    assert fields["CapAmb"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"


def test_caps_can_be_dropped_and_added(state_root: Path) -> None:
    dropped = sh(state_root, "grep CapBnd /proc/self/status", security=Security(cap_drop=["ALL"]))
    assert (dropped.stdout or b"").split()[-1] == b"0000000000000000"
    added = sh(state_root, "grep CapEff /proc/self/status", security=Security(cap_drop=["ALL"], cap_add=["NET_ADMIN"]))
    assert (added.stdout or b"").split()[-1] == b"0000000000001000"


def test_userns_host_still_confines_with_caps_and_seccomp(state_root: Path, attempts: Path) -> None:
    for name in ("mount", "init_module", "nested_userns", "bpf"):
        code, output = attempt(state_root, attempts, name, security=Security(userns="host"))
        assert (code, output.startswith("blocked")) == (0, True), output


def test_seccomp_unconfined_lets_through_what_the_profile_blocks(state_root: Path, attempts: Path) -> None:
    # keyctl needs no privilege: only the profile stands in its way (a control for the blocked case).
    code, output = attempt(state_root, attempts, "keyctl", security=Security(seccomp="unconfined"))
    assert (code, output.startswith("ESCAPED")) == (1, True), output
    code, output = attempt(state_root, attempts, "keyctl")
    assert (code, "Operation not permitted" in output) == (0, True), output


def test_a_docker_format_profile_is_honoured(state_root: Path, attempts: Path, volume_dir: Path) -> None:
    profile = volume_dir / "profile.json"
    profile.write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdirat", "mkdir"], '
        '"action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}'
    )
    result = sh(state_root, "mkdir /tmp/x", security=Security(seccomp=str(profile)))
    assert result.exit_code == 1 and b"Permission denied" in (result.stderr or b"")
