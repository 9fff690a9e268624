"""lxrun-oci against bundles made here, side by side with runc where runc is installed: the same exit
codes and output; the lifecycle (created is pid 1 waiting, start lets the command run), hooks, config
errors naming their field, and nothing left behind (records, container dirs, cgroups, processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
BUSYBOX_APPLETS = ("sh", "echo", "cat", "sleep", "id", "hostname", "pwd", "touch", "env", "true", "readlink", "mkdir")


def oci_command() -> list[str]:
    """The installed runtime beside the interpreter, else this checkout's script run by it."""
    beside = Path(sys.executable).with_name("lxrun-oci")
    return [str(beside)] if beside.exists() else [sys.executable, str(REPO / "bin" / "lxrun-oci")]


# lxrun-oci also runs in the pure cgroup-v2 guest (make test-v2), which has no runc.
RUNTIMES = [pytest.param("lxrun", marks=pytest.mark.v2), "runc"]


@pytest.fixture
def runtime(request: pytest.FixtureRequest, tmp_path: Path, native_ready: None) -> list[str]:
    name = request.param
    if name == "runc":
        require(shutil.which("runc") is not None, "runc is not installed (apt-get install runc)")
        return ["runc", "--root", str(tmp_path / "runc-root")]
    return [*oci_command(), "--root", str(tmp_path / "oci-root")]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    require(Path("/bin/busybox").is_file(), "busybox-static is not installed")
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", bundle / "rootfs" / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (bundle / "rootfs" / "bin" / applet).symlink_to("busybox")
    (bundle / "rootfs" / "etc").mkdir()
    subprocess.run([*oci_command(), "spec", "--bundle", str(bundle)], check=True)
    return bundle


def configure(bundle: Path, args: list[str], **changes: Any) -> dict[str, Any]:
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["linux"]["cgroupsPath"] = f"/lxrun-oci-test-{os.urandom(4).hex()}"  # runc's: none shared between tests
    for path, value in changes.items():
        node = config
        *parents, last = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    (bundle / "config.json").write_text(json.dumps(config))
    return config


def oci(runtime: list[str], *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Output through files, not pipes: a created container keeps the stdio `create` had (as runc's)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.run(
            [*runtime, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60
        ).returncode
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(args, code, out.read().decode(), err.read().decode())
    if check and code != 0:
        raise AssertionError(f"{args}: {done.stderr}")
    return done


def state(runtime: list[str], container: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(oci(runtime, "state", container, check=True).stdout)
    return result


@pytest.fixture
def leaves_nothing(tmp_path: Path) -> Iterator[None]:
    """After the test: no task record, no container dir, no lxrun cgroup of the root's tasks, no process."""
    yield
    root = tmp_path / "oci-root"
    assert not list((root / "run").glob("*.json")) if (root / "run").exists() else True
    assert not list((root / "oci").iterdir()) if (root / "oci").exists() else True
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "bundle")], capture_output=True, text=True).stdout
    assert not leftovers.strip()


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_run_gives_the_exit_code_and_output(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    configure(
        bundle,
        ["sh", "-c", "echo out $GREETING; echo err >&2; pwd; id -u; id -G; hostname; exit 7"],
        process__env=["PATH=/bin", "GREETING=hello"],
        process__cwd="/work",
        process__user={"uid": 1000, "gid": 1000, "additionalGids": [5, 7]},
        hostname="box",
    )
    (bundle / "rootfs" / "work").mkdir()
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert done.returncode == 7, done.stderr
    assert done.stdout == "out hello\n/work\n1000\n1000 5 7\nbox\n"
    assert [line for line in done.stderr.splitlines() if not line.startswith("time=")] == ["err"]  # runc's warnings


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_killed_by_a_signal_is_128_plus_n(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    configure(bundle, ["sleep", "100"])
    with tempfile.TemporaryFile() as output:
        foreground = subprocess.Popen([*runtime, "run", "--bundle", str(bundle), "c1"], stdout=output, stderr=output)
        assert wait_for(lambda: oci(runtime, "state", "c1").stdout.count('"running"') == 1)
        assert oci(runtime, "kill", "c1", "9").returncode == 0
        assert foreground.wait(timeout=30) == 137


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_lifecycle_created_running_stopped(
    runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None
) -> None:
    marker = tmp_path / "started"
    configure(bundle, ["sh", "-c", "touch /out/started; sleep 100"])
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path), "options": ["rbind"]})
    (bundle / "config.json").write_text(json.dumps(config))
    created = oci(runtime, "create", "--bundle", str(bundle), "--pid-file", str(tmp_path / "pid"), "c1")
    assert created.returncode == 0, created.stderr
    try:
        first = state(runtime, "c1")
        assert first["status"] == "created" and first["id"] == "c1"
        assert first["bundle"] == str(bundle)
        assert first["pid"] == int((tmp_path / "pid").read_text())
        assert not marker.exists()  # created: pid 1 waits, the command has not run
        assert oci(runtime, "start", "c1").returncode == 0
        assert state(runtime, "c1")["status"] == "running"
        assert wait_for(marker.exists)
        refused = oci(runtime, "delete", "c1")
        assert refused.returncode == 1 and "that is not stopped: running" in refused.stderr
        assert oci(runtime, "kill", "c1", "KILL").returncode == 0
        assert wait_for(lambda: state(runtime, "c1")["status"] == "stopped")
        assert oci(runtime, "delete", "c1").returncode == 0
        gone = oci(runtime, "state", "c1")
        assert gone.returncode == 1 and "does not exist" in gone.stderr
    finally:
        oci(runtime, "delete", "--force", "c1")


def test_delete_force_releases_a_running_container_and_its_cgroup(
    bundle: Path, tmp_path: Path, native_ready: None, leaves_nothing: None
) -> None:
    runtime = [*oci_command(), "--root", str(tmp_path / "oci-root")]
    configure(bundle, ["sleep", "100"], linux__resources={"memory": {"limit": 64 * 1024 * 1024}})
    oci(runtime, "create", "--bundle", str(bundle), "c1", check=True)
    oci(runtime, "start", "c1", check=True)
    pid = state(runtime, "c1")["pid"]
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    memory = next(line.split(":", 2)[2] for line in lines if line.split(":")[1] == "memory")
    assert "/lxrun-" in memory
    directory = Path(f"/sys/fs/cgroup/memory{memory}")
    assert (directory / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    assert oci(runtime, "delete", "--force", "c1").returncode == 0
    assert not directory.exists()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_a_missing_command_fails_start_with_runcs_words(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    configure(bundle, ["no-such-command"])
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert done.returncode != 0
    assert "no-such-command" in done.stderr and "executable file not found in $PATH" in done.stderr
    oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_read_only_root_with_a_tmpfs(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    configure(bundle, ["sh", "-c", "touch /x 2>/dev/null && echo wrote; touch /scratch/y && echo tmpfs"])
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["readonly"] = True
    config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
    (bundle / "config.json").write_text(json.dumps(config))
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert (done.returncode, done.stdout) == (0, "tmpfs\n"), done.stderr
    assert not (bundle / "rootfs" / "x").exists()


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_hooks_get_the_state_on_stdin(runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None) -> None:
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(f'#!/bin/sh\necho "$1 $(cat)" >> {log}\n')
    script.chmod(0o755)
    hooks = {kind: [{"path": str(script), "args": ["hook", kind]}] for kind in ("prestart", "poststart", "poststop")}
    configure(bundle, ["true"], hooks=hooks)
    assert oci(runtime, "run", "--bundle", str(bundle), "c1").returncode == 0
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["prestart", "poststart", "poststop"]
    first = json.loads(lines[0].split(" ", 1)[1])
    assert first["id"] == "c1" and first["status"] == "creating" and first["pid"] > 0


@pytest.mark.v2
def test_unsupported_config_names_the_field(bundle: Path, tmp_path: Path, native_ready: None) -> None:
    runtime = [*oci_command(), "--root", str(tmp_path / "oci-root"), "--log", str(tmp_path / "log")]
    config = configure(bundle, ["true"])
    config["linux"]["namespaces"].append({"type": "user"})
    (bundle / "config.json").write_text(json.dumps(config))
    done = oci([*runtime, "--log-format", "json"], "create", "--bundle", str(bundle), "c1")
    assert done.returncode == 1 and "linux.namespaces" in done.stderr
    entry = json.loads((tmp_path / "log").read_text().splitlines()[-1])
    assert entry["level"] == "error" and "linux.namespaces" in entry["msg"] and entry["time"]
    assert oci(runtime, "state", "c1").returncode == 1


@pytest.mark.v2
def test_gc_releases_a_container_whose_engine_died(bundle: Path, tmp_path: Path, native_ready: None) -> None:
    root = tmp_path / "oci-root"
    configure(bundle, ["sleep", "100"])
    # The engine: a shell that creates the container and exits.
    engine = subprocess.run(
        [
            "sh",
            "-c",
            '"$@" && true',
            "sh",
            *oci_command(),
            "--root",
            str(root),
            "create",
            "--bundle",
            str(bundle),
            "c1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert engine.returncode == 0
    pid = json.loads((root / "oci" / "c1" / "state.json").read_text())["pid"]
    lxrun = Path(sys.executable).with_name("lxrun")
    gc = subprocess.run([str(lxrun), "gc", "--root", str(root)], capture_output=True, text=True)
    assert gc.returncode == 0, gc.stderr
    assert not list((root / "run").glob("*.json"))
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text())
    shutil.rmtree(root / "oci")


def wait_for(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_exec_a_second_process(runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None) -> None:
    configure(bundle, ["sleep", "100"], process__env=["PATH=/bin"])
    oci(runtime, "create", "--bundle", str(bundle), "c1", check=True)
    try:
        oci(runtime, "start", "c1", check=True)
        process = {"args": ["sh", "-c", "echo $WHO; id -u; pwd; exit 6"], "env": ["PATH=/bin", "WHO=second"],
                   "cwd": "/bin", "user": {"uid": 1000, "gid": 1000}}  # fmt: skip
        (tmp_path / "process.json").write_text(json.dumps(process))
        done = oci(runtime, "exec", "--process", str(tmp_path / "process.json"), "c1")
        assert (done.returncode, done.stdout) == (6, "second\n1000\n/bin\n"), done.stderr
        detached = oci(runtime, "exec", "-d", "--pid-file", str(tmp_path / "pid"), "c1", "sleep", "50")
        assert detached.returncode == 0, detached.stderr
        pid = int((tmp_path / "pid").read_text())
        assert Path(f"/proc/{pid}/ns/pid").readlink() == Path(f"/proc/{state(runtime, 'c1')['pid']}/ns/pid").readlink()
    finally:
        oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_run_passes_signals_on(runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None) -> None:
    configure(bundle, ["sh", "-c", "trap 'exit 42' TERM; touch /out/ready; while true; do sleep 0.1; done"])
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path), "options": ["rbind"]})
    (bundle / "config.json").write_text(json.dumps(config))
    with tempfile.TemporaryFile() as output:
        foreground = subprocess.Popen([*runtime, "run", "--bundle", str(bundle), "c1"], stdout=output, stderr=output)
        assert wait_for((tmp_path / "ready").exists)
        foreground.terminate()
        assert foreground.wait(timeout=30) == 42


def test_a_reader_that_goes_away_gets_one_line_not_a_traceback() -> None:
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write fails with EPIPE
    done = subprocess.run([*oci_command(), "features"], stdout=write, stderr=subprocess.PIPE, text=True, timeout=30)
    os.close(write)
    assert (done.returncode, done.stderr) == (1, "lxrun-oci: write to stdout: the reader went away\n")


def frozen(pid: int) -> bool:
    """The kernel's word on whether `pid`'s cgroup is frozen: its v1 freezer's state, else its cgroup2
    cgroup.events (a pure v2 host)."""
    lines = [line.split(":", 2) for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()]
    for _, controllers, path in lines:
        if "freezer" in controllers.split(","):
            return Path(f"/sys/fs/cgroup/freezer{path}/freezer.state").read_text().strip() == "FROZEN"
    path = next(path for _, controllers, path in lines if not controllers)
    return "frozen 1" in Path(f"/sys/fs/cgroup{path}/cgroup.events").read_text().splitlines()


def started(runtime: list[str], bundle: Path, args: list[str], **changes: Any) -> list[int]:
    """A container c1 running `args`, its cgroup mounted at /sys/fs/cgroup; the pids `ps` lists for it."""
    configure(bundle, args, process__env=["PATH=/bin"], **changes)
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                             "options": ["nosuid", "noexec", "nodev", "ro"]})  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(config))
    oci(runtime, "create", "--bundle", str(bundle), "c1", check=True)
    oci(runtime, "start", "c1", check=True)

    def listed() -> list[int]:
        return list(json.loads(oci(runtime, "ps", "--format", "json", "c1", check=True).stdout))

    assert wait_for(lambda: len(listed()) >= 2)  # both sleeps (and lxrun's init)
    pids = listed()
    return pids


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_pause_freezes_every_process_and_resume_thaws_them(
    runtime: list[str], bundle: Path, leaves_nothing: None
) -> None:
    try:
        pids = started(runtime, bundle, ["sh", "-c", "sleep 100 & sleep 100"])
        assert state(runtime, "c1")["pid"] in pids
        assert not any(frozen(pid) for pid in pids)
        assert oci(runtime, "pause", "c1").returncode == 0
        assert state(runtime, "c1")["status"] == "paused"
        assert all(frozen(pid) for pid in pids)
        refused = oci(runtime, "delete", "c1")
        assert refused.returncode == 1 and "paused" in refused.stderr
        assert oci(runtime, "resume", "c1").returncode == 0
        assert state(runtime, "c1")["status"] == "running"
        assert not any(frozen(pid) for pid in pids)
        again = oci(runtime, "resume", "c1")
        assert again.returncode == 1 and "container not paused" in again.stderr
        assert oci(runtime, "pause", "c1").returncode == 0
        assert oci(runtime, "kill", "c1", "KILL").returncode == 0  # thawed to die, as runc's
        assert wait_for(lambda: state(runtime, "c1")["status"] == "stopped")
        stopped = oci(runtime, "pause", "c1")
        assert stopped.returncode == 1 and "container not running" in stopped.stderr
        assert oci(runtime, "delete", "c1").returncode == 0
    finally:
        oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_delete_force_of_a_paused_container(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    try:
        pids = started(runtime, bundle, ["sh", "-c", "sleep 100 & sleep 100"])
        assert oci(runtime, "pause", "c1").returncode == 0
        assert all(frozen(pid) for pid in pids)
        assert oci(runtime, "delete", "--force", "c1").returncode == 0
        assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids))
    finally:
        oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_ps_lists_the_containers_processes(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    try:
        pids = started(runtime, bundle, ["sh", "-c", "sleep 100 & sleep 100"])
        assert all(Path(f"/proc/{pid}/ns/pid").readlink() == Path(f"/proc/{pids[0]}/ns/pid").readlink() for pid in pids)
        table = oci(runtime, "ps", "c1", check=True).stdout.splitlines()
        column = table[0].split().index("PID")
        assert sorted(int(line.split()[column]) for line in table[1:]) == sorted(pids)
        assert sum("sleep 100" in line for line in table) == 2
    finally:
        oci(runtime, "delete", "--force", "c1")


def cgroup_file_inside(runtime: list[str], v1: str, v2: str) -> str:
    """A file of the container's cgroup as it reads it: at its v1 path, else its cgroup2 one."""
    script = f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}"
    done = oci(runtime, "exec", "c1", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def memory_limit_inside(runtime: list[str]) -> str:
    return cgroup_file_inside(runtime, "memory/memory.limit_in_bytes", "memory.max")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_update_memory_is_seen_inside(runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None) -> None:
    try:
        started(runtime, bundle, ["sh", "-c", "sleep 100 & sleep 100"],
                linux__resources={"memory": {"limit": 128 << 20}})  # fmt: skip
        assert memory_limit_inside(runtime) == str(128 << 20)
        done = oci(runtime, "update", "--memory", "64m", "--memory-swap", "64m", "c1")
        assert done.returncode == 0, done.stderr
        assert memory_limit_inside(runtime) == str(64 << 20)
        # What docker sends on its stdin for `docker update --memory 96m --memory-swap 96m`: zeros are unchanged.
        resources = {"memory": {"limit": 96 << 20, "swap": 96 << 20},
                     "cpu": {"cpus": "", "mems": "", "period": 0, "quota": 0, "realtimePeriod": 0,
                             "realtimeRuntime": 0}}  # fmt: skip
        (tmp_path / "resources.json").write_text(json.dumps(resources))
        done = oci(runtime, "update", "--resources", str(tmp_path / "resources.json"), "c1")
        assert done.returncode == 0, done.stderr
        assert memory_limit_inside(runtime) == str(96 << 20)
        done = oci(runtime, "update", "--pids-limit", "40", "c1")
        assert done.returncode == 0, done.stderr
        assert cgroup_file_inside(runtime, "pids/pids.max", "pids.max") == "40"
    finally:
        oci(runtime, "delete", "--force", "c1")


@pytest.mark.v2
def test_update_names_a_field_it_cannot_apply(
    bundle: Path, tmp_path: Path, native_ready: None, leaves_nothing: None
) -> None:
    runtime = [*oci_command(), "--root", str(tmp_path / "oci-root")]
    try:
        started(runtime, bundle, ["sh", "-c", "sleep 100 & sleep 100"])
        refused = oci(runtime, "update", "--blkio-weight", "300", "c1")
        assert refused.returncode == 1 and "linux.resources.blockIO.weight" in refused.stderr
        refused = oci(runtime, "update", "--memory", "1k", "c1")
        assert refused.returncode == 1 and "linux.resources.memory.limit" in refused.stderr
    finally:
        oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_events_stats_gives_numbers(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    try:
        pids = started(runtime, bundle, ["sh", "-c", "sleep 100 & sleep 100"],
                       linux__resources={"memory": {"limit": 64 << 20}, "pids": {"limit": 30}})  # fmt: skip
        lines = oci(runtime, "events", "--stats", "c1", check=True).stdout.splitlines()
        assert len(lines) == 1
        event = json.loads(lines[0])
        assert (event["type"], event["id"]) == ("stats", "c1")
        data = event["data"]
        assert data["memory"]["usage"]["limit"] == 64 << 20 and data["memory"]["usage"]["usage"] > 0
        assert data["pids"] == {"current": len(pids), "limit": 30}
        usage = data["cpu"]["usage"]
        assert usage.get("total", 0) >= usage["user"] >= 0 and usage["kernel"] >= 0
    finally:
        oci(runtime, "delete", "--force", "c1")


@pytest.mark.v2
def test_events_streams_until_the_container_stops(
    bundle: Path, tmp_path: Path, native_ready: None, leaves_nothing: None
) -> None:
    runtime = [*oci_command(), "--root", str(tmp_path / "oci-root")]
    try:
        started(runtime, bundle, ["sh", "-c", "sleep 100 & sleep 100"])
        stream = subprocess.Popen([*runtime, "events", "--interval", "100ms", "c1"], stdout=subprocess.PIPE, text=True)
        assert stream.stdout is not None
        first = json.loads(stream.stdout.readline())
        assert (first["type"], first["id"]) == ("stats", "c1") and first["data"]["pids"]["current"] >= 2
        oci(runtime, "kill", "c1", "KILL", check=True)
        assert stream.wait(timeout=30) == 0
    finally:
        oci(runtime, "delete", "--force", "c1")


def joining(config: dict[str, Any], pid: int, kinds: tuple[str, ...]) -> None:
    """config's namespaces of `kinds` given as pid's, by path (what containerd writes for a pod's containers)."""
    for namespace in config["linux"]["namespaces"]:
        namespace.pop("path", None)
        if namespace["type"] in kinds:
            namespace["path"] = f"/proc/{pid}/ns/{'net' if namespace['type'] == 'network' else namespace['type']}"


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_a_container_joins_a_pods_network_ipc_and_uts_by_path(
    runtime: list[str], bundle: Path, leaves_nothing: None
) -> None:
    try:
        configure(bundle, ["sleep", "100"], hostname="pod")
        oci(runtime, "create", "--bundle", str(bundle), "sandbox", check=True)
        oci(runtime, "start", "sandbox", check=True)
        pod = state(runtime, "sandbox")["pid"]
        links = "for kind in net ipc uts pid; do readlink /proc/self/ns/$kind; done"
        config = configure(bundle, ["sh", "-c", f"hostname; {links}"])
        joining(config, pod, ("network", "ipc", "uts"))
        del config["hostname"]
        (bundle / "config.json").write_text(json.dumps(config))
        done = oci(runtime, "run", "--bundle", str(bundle), "app")
        assert done.returncode == 0, done.stderr
        hostname, *namespaces = done.stdout.split()
        pods = [os.readlink(f"/proc/{pod}/ns/{kind}") for kind in ("net", "ipc", "uts", "pid")]
        assert (hostname, namespaces[:3]) == ("pod", pods[:3])
        assert namespaces[3] != pods[3]  # a pid namespace of its own
    finally:
        oci(runtime, "delete", "--force", "sandbox")


@pytest.mark.v2
def test_joining_a_pid_namespace_or_setting_a_joined_uts_hostname_names_the_field(
    bundle: Path, tmp_path: Path, native_ready: None, leaves_nothing: None
) -> None:
    runtime = [*oci_command(), "--root", str(tmp_path / "oci-root")]
    config = configure(bundle, ["true"], hostname="x")
    joining(config, os.getpid(), ("pid",))
    (bundle / "config.json").write_text(json.dumps(config))
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert done.returncode == 1 and "linux.namespaces" in done.stderr and "pid namespace" in done.stderr
    config = configure(bundle, ["true"], hostname="x")
    joining(config, os.getpid(), ("uts",))
    (bundle / "config.json").write_text(json.dumps(config))
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert done.returncode == 1 and done.stderr.startswith("hostname"), done.stderr


def has_cap_sys_resource() -> bool:
    status = Path("/proc/self/status").read_text()
    effective = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
    return bool(int(effective, 16) >> 24 & 1)  # CAP_SYS_RESOURCE


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_rlimits_and_oom_score_adj_are_the_processes(
    runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None
) -> None:
    """process.rlimits (lowered) and oomScoreAdj: the container's process gets them, and exec's process too
    (the container's, or those of its --process file)."""
    report = "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj"
    nofile = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]
    configure(bundle, ["sh", "-c", f"{report}; sleep 100"], process__env=["PATH=/bin"],
              process__rlimits=nofile, process__oomScoreAdj=500)  # fmt: skip
    oci(runtime, "create", "--bundle", str(bundle), "c1", check=True)
    try:
        oci(runtime, "start", "c1", check=True)
        pid = state(runtime, "c1")["pid"]
        assert Path(f"/proc/{pid}/oom_score_adj").read_text() == "500\n"
        # runc 1.1's exec raises the soft NOFILE limit to the hard one (Go's own start-up, runc#4195):
        # its exec is held to the hard limit only.
        exact = "runc" not in runtime[0]
        done = oci(runtime, "exec", "c1", "sh", "-c", report)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "512\n1024\n500\n" if exact else done.stdout.endswith("\n1024\n500\n")
        process = {"args": ["sh", "-c", report], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                   "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]}  # fmt: skip
        (tmp_path / "process.json").write_text(json.dumps(process))
        done = oci(runtime, "exec", "--process", str(tmp_path / "process.json"), "c1")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "256\n512\n500\n" if exact else done.stdout.endswith("\n512\n500\n")
    finally:
        oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_rlimits_reach_a_process_of_another_user(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    """pid 1 already runs as the container's user: its limits are set where only root's own apply (podman's
    default_ulimits with -u 1000 failed create once)."""
    configure(bundle, ["sh", "-c", "id -u; ulimit -n; ulimit -Hn"], process__user={"uid": 1000, "gid": 1000},
              process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}])  # fmt: skip
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert (done.returncode, done.stdout) == (0, "1000\n256\n512\n"), done.stderr


# Not in the v2 guest, whose root may raise hard limits (CAP_SYS_RESOURCE): the refusal needs this host's.
@pytest.mark.parametrize("runtime", ["lxrun", "runc"], indirect=True)
def test_an_rlimit_above_the_callers_hard_limit_fails_create(
    runtime: list[str], bundle: Path, leaves_nothing: None
) -> None:
    require(not has_cap_sys_resource(), "this root may raise hard limits (CAP_SYS_RESOURCE)")
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    require(hard != resource.RLIM_INFINITY, "the hard limit of open files is unlimited here")
    configure(bundle, ["true"], process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": hard + 1}])
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert done.returncode == 1, done.stderr  # runc's words differ: its exit code is what engines read
    if "runc" not in runtime[0]:
        assert "process.rlimits RLIMIT_NOFILE" in done.stderr and "CAP_SYS_RESOURCE" in done.stderr
    oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_namespaced_sysctls_are_set_inside(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    host = Path("/proc/sys/kernel/shmmax").read_text()
    value = "123456789" if host != "123456789\n" else "987654321"
    configure(bundle, ["cat", "/proc/sys/kernel/shmmax", "/proc/sys/net/ipv4/ip_forward"],
              linux__sysctl={"kernel.shmmax": value, "net/ipv4/ip_forward": "1"})  # fmt: skip
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert (done.returncode, done.stdout) == (0, f"{value}\n1\n"), done.stderr
    assert Path("/proc/sys/kernel/shmmax").read_text() == host


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
@pytest.mark.parametrize(
    ("key", "host_network"), [("kernel.core_pattern", False), ("net.ipv4.ip_forward", True)], ids=["host", "hostnet"]
)
def test_a_sysctl_outside_the_containers_namespaces_is_refused(
    runtime: list[str], bundle: Path, key: str, host_network: bool, leaves_nothing: None
) -> None:
    path = Path("/proc/sys", *key.split("."))
    before = path.read_text()
    config = configure(bundle, ["true"], linux__sysctl={key: "lxrun-oci-test"})
    if host_network:
        config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
        (bundle / "config.json").write_text(json.dumps(config))
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert done.returncode == 1 and key in done.stderr
    if "runc" not in runtime[0]:
        assert done.stderr.startswith(f"linux.sysctl {key}: ")
    assert path.read_text() == before
    oci(runtime, "delete", "--force", "c1")


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_masked_and_read_only_paths_of_the_bundle(runtime: list[str], bundle: Path, leaves_nothing: None) -> None:
    """/proc/interrupts (lxrun does not mask it itself) reads empty, /etc refuses writes; lxrun keeps its
    own masks (/proc/timer_list) though the bundle's list lacks them, runc masks only the list."""
    script = ("cat /proc/interrupts; echo masked; touch /etc/x 2>/dev/null || echo read-only; touch /x && echo rw;"
              ' [ -z "$(cat /proc/timer_list)" ] && echo own-masks-kept; true')  # fmt: skip
    configure(bundle, ["sh", "-c", script], root__readonly=False, linux__maskedPaths=["/proc/interrupts"],
              linux__readonlyPaths=["/etc"])  # fmt: skip
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    kept = "" if "runc" in runtime[0] else "own-masks-kept\n"
    assert (done.returncode, done.stdout) == (0, f"masked\nread-only\nrw\n{kept}"), done.stderr
    assert not (bundle / "rootfs" / "etc" / "x").exists()


@pytest.mark.parametrize("runtime", ["lxrun", "runc"], indirect=True)  # not in the v2 guest: no nsenter, ip
def test_sysctls_are_written_after_the_create_hooks(
    runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None
) -> None:
    """As runc: a prestart hook (docker's libnetwork-setkey) puts an interface in first, a sysctl names it."""
    require(shutil.which("nsenter") is not None and shutil.which("ip") is not None, "nsenter or ip is missing")
    script = tmp_path / "hook.sh"
    script.write_text('#!/bin/sh\npid=$(sed \'s/.*"pid": *\\([0-9]*\\).*/\\1/\')\n'
                      'exec nsenter -t "$pid" -n ip link add lxrun0 type veth peer name lxrun1\n')  # fmt: skip
    script.chmod(0o755)
    sysctl = {"net.ipv4.conf.lxrun0.forwarding": "1"}
    configure(bundle, ["cat", "/proc/sys/net/ipv4/conf/lxrun0/forwarding"],
              hooks={"prestart": [{"path": str(script)}]}, linux__sysctl=sysctl)  # fmt: skip
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr


# Allows all but mkdir, which fails with ENOSYS: lxrun's default (Docker's) allows it, so a runtime that
# put its own profile in place of the bundle's would let it through.
NO_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
}
REFUSED_MKDIR = "mkdir: can't create directory '/tmp/x': Function not implemented"


@pytest.mark.parametrize("runtime", RUNTIMES, indirect=True)
def test_the_bundles_seccomp_profile_is_the_one_loaded(
    runtime: list[str], bundle: Path, tmp_path: Path, leaves_nothing: None
) -> None:
    configure(bundle, ["sh", "-c", "mkdir /tmp/x 2>&1; echo $?"], linux__seccomp=NO_MKDIR)
    for name in ("c1", "c2"):  # the second finds the profile stored and compiled
        done = oci(runtime, "run", "--bundle", str(bundle), name)
        assert (done.returncode, done.stdout) == (
            0,
            "mkdir: can't create directory '/tmp/x': Function not implemented\n1\n",
        )
    if runtime[0] != "runc":
        assert len(list((tmp_path / "oci-root" / "cache" / "seccomp-profiles").iterdir())) == 1


@pytest.mark.v2
def test_a_seccomp_notify_listener_names_the_field(
    bundle: Path, tmp_path: Path, native_ready: None, leaves_nothing: None
) -> None:
    runtime = [*oci_command(), "--root", str(tmp_path / "oci-root")]
    configure(bundle, ["true"], linux__seccomp={**NO_MKDIR, "listenerPath": "/run/agent.sock"})
    done = oci(runtime, "run", "--bundle", str(bundle), "c1")
    assert (done.returncode, done.stderr) == (
        1,
        "linux.seccomp: a seccomp notify listener is not supported by lxrun-oci\n",
    )
