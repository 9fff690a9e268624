"""`docker run --runtime lxrun` next to `--runtime runc` on the private dockerd of `make test` (scripts/dockerd
with LXRUN_OCI_RUNTIME): the same exit codes and output for each docker flow, nothing left behind."""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require

IMAGE = "lxrun-oci-test:busybox"
APPLETS = (
    "sh",
    "echo",
    "cat",
    "sleep",
    "id",
    "pwd",
    "touch",
    "true",
    "ls",
    "hostname",
    "ip",
    "tty",
    "stat",
    "readlink",
)
RUNTIMES = ["lxrun", "runc"]


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.returncode} {done.stderr}")
    return done


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    require(bool(os.environ.get("DOCKER_HOST")) and shutil.which("docker") is not None, "no private dockerd")
    runtimes = docker("info", "--format", "{{json .Runtimes}}", check=False).stdout
    require("lxrun" in runtimes, "dockerd has no lxrun runtime (scripts/dockerd with LXRUN_OCI_RUNTIME)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "etc", "data"):
            entry = tarfile.TarInfo(directory)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(entry)
        tar.add("/bin/busybox", "bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    subprocess.run(["docker", "import", "-", IMAGE], input=buffer.getvalue(), check=True, capture_output=True)
    yield IMAGE
    docker("rmi", "-f", IMAGE, check=False)


def lxrun_cgroups() -> set[str]:
    return {str(path) for path in Path("/sys/fs/cgroup").glob("*/docker/lxrun-*")}


@pytest.fixture
def leaves_nothing(image: str) -> Iterator[None]:
    before = lxrun_cgroups()
    yield
    assert not docker("ps", "-aq").stdout.strip()
    assert lxrun_cgroups() <= before


def run(runtime: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return docker("run", "--rm", "--runtime", runtime, "--network", "none", *args, check=False, timeout=timeout)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exit_code_output_env_workdir_user(runtime: str, image: str, leaves_nothing: None) -> None:
    done = run(runtime, "-e", "GREETING=hi", "-w", "/tmp", "-u", "1000:1000", image, "sh", "-c",
               "echo $GREETING; pwd; id -u; id -g; echo oops >&2; exit 3")  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (3, "hi\n/tmp\n1000\n1000\n", "oops\n")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_missing_command_is_127(runtime: str, image: str, leaves_nothing: None) -> None:
    done = run(runtime, image, "no-such-command")
    assert done.returncode == 127 and "executable file not found" in done.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_volume_and_read_only_root(runtime: str, image: str, tmp_path: Path, leaves_nothing: None) -> None:
    (tmp_path / "in").write_text("from the host\n")
    done = run(runtime, "--read-only", "-v", f"{tmp_path}:/data", image, "sh", "-c",
               "cat /data/in; echo back > /data/out; touch /x 2>/dev/null || echo read-only")  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "from the host\nread-only\n"), done.stderr
    assert (tmp_path / "out").read_text() == "back\n"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_memory_and_pids_limits_are_the_containers(runtime: str, image: str, leaves_nothing: None) -> None:
    done = run(runtime, "--memory", "64m", "--pids-limit", "50", image, "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")  # fmt: skip
    assert (done.returncode, done.stdout) == (0, f"{64 << 20}\n50\n"), done.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_kill_is_137(runtime: str, image: str, leaves_nothing: None) -> None:
    name = f"kill-{runtime}"
    docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", image, "sleep", "100")
    try:
        docker("kill", name)
        assert docker("wait", name).stdout.strip() == "137"
    finally:
        docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_stop_waits_its_timeout_for_a_process_that_ignores_sigterm(
    runtime: str, image: str, leaves_nothing: None
) -> None:
    """sleep as a container's main process takes no SIGTERM (pid 1 under runc; lxrun-init passes on only
    the signals the process catches, as the kernel does for a pid 1): docker stop kills it after -t."""
    name = f"stop-{runtime}"
    docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", image, "sleep", "100")
    try:
        docker("stop", "-t", "1", name)  # SIGTERM passed on would end sleep with 143
        assert docker("wait", name).stdout.strip() == "137"
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 137
    finally:
        docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_stop_of_a_process_that_catches_sigterm(runtime: str, image: str, leaves_nothing: None) -> None:
    name = f"trap-{runtime}"
    docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", image, "sh", "-c",
           "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done")  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "ready" not in docker("logs", name).stdout and time.monotonic() < deadline:
            time.sleep(0.05)  # until the shell has its trap
        docker("stop", "-t", "20", name)
        assert docker("wait", name).stdout.strip() == "42"
    finally:
        docker("rm", "-f", name, check=False)


def test_the_container_is_lxruns(image: str, leaves_nothing: None) -> None:
    """What runs is lxrun's sandbox: its pid 1 is lxrun-init, its cgroup lxrun's own below docker's parent."""
    done = run("lxrun", image, "cat", "/proc/1/cmdline", "/proc/self/cgroup")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("lxrun-init\0")
    container = docker(
        "run", "--rm", "--runtime", "lxrun", "--network", "none", "-d", image, "sleep", "100"
    ).stdout.strip()
    try:
        pid = json.loads(docker("inspect", container).stdout)[0]["State"]["Pid"]
        assert ":memory:/docker/lxrun-" in Path(f"/proc/{pid}/cgroup").read_text()
    finally:
        docker("rm", "-f", container, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_exec_and_stats(runtime: str, image: str, leaves_nothing: None) -> None:
    name = f"exec-{runtime}"
    docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", "--memory", "64m", image,
           "sleep", "100")  # fmt: skip
    try:
        done = docker("exec", "-e", "WHO=second", "-w", "/tmp", "-u", "1000", name, "sh", "-c",
                      "echo $WHO; pwd; id -u; exit 4", check=False)  # fmt: skip
        assert (done.returncode, done.stdout) == (4, "second\n/tmp\n1000\n"), done.stderr
        missing = docker("exec", name, "no-such-command", check=False)
        assert missing.returncode in (126, 127) and "executable file not found" in missing.stdout + missing.stderr
        stats = docker("stats", "--no-stream", "--format", "{{.MemUsage}} {{.PIDs}}", name).stdout.split()
        assert stats[2] == "64MiB" and int(stats[-1]) >= 1
        detached = docker("exec", "-d", name, "sleep", "50", check=False)
        assert detached.returncode == 0, detached.stderr
        # exec -t: a second pty of the container's devpts (the first process has none: /dev/pts/0)
        done = docker("exec", "-t", "-u", "1000", name, "sh", "-c", 'tty; stat -c %u "$(tty)"', check=False)
        assert (done.returncode, done.stdout.replace("\r\n", "\n")) == (0, "/dev/pts/0\n1000\n"), done.stderr
    finally:
        docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_terminal_through_the_console_socket(runtime: str, image: str, leaves_nothing: None) -> None:
    done = run(runtime, "-t", image, "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo terminal; exit 2")
    assert (done.returncode, done.stdout) == (2, "terminal\n"), done.stderr
    # The pty is of the container's own devpts, so `tty` names it inside; its user and group tty own it.
    done = run(runtime, "-t", "-u", "1000:1000", image, "sh", "-c", 'tty; stat -c "%u %g" "$(tty)"')
    assert (done.returncode, done.stdout.replace("\r\n", "\n")) == (0, "/dev/pts/0\n1000 5\n"), done.stderr


@pytest.fixture(scope="module")
def containerd(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """ctr on the containerd of the private dockerd, in a namespace of its own, with the test image imported."""
    require(shutil.which("ctr") is not None, "ctr is not installed (containerd)")
    run_dir = Path(os.environ["DOCKER_HOST"].removeprefix("unix://")).parent
    sockets = list(run_dir.glob("exec/containerd/containerd.sock"))
    require(bool(sockets), f"no containerd socket below {run_dir}")
    ctr = ["ctr", "-a", str(sockets[0]), "-n", "lxrun-oci-test"]
    archive = tmp_path_factory.mktemp("ctr") / "image.tar"
    docker("save", image, "-o", str(archive))
    subprocess.run([*ctr, "images", "import", "--base-name", "docker.io/library/lxrun-oci-test", str(archive)],
                   check=True, capture_output=True)  # fmt: skip
    yield ctr
    subprocess.run([*ctr, "images", "rm", f"docker.io/library/{image}"], capture_output=True)
    # The namespace's cgroup parent, which the runtime made (as runc makes it) and nothing removes.
    for parent in sorted(glob.glob("/sys/fs/cgroup/*/lxrun-oci-test"), key=len, reverse=True):
        os.rmdir(parent)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ctr_run_with_runc_binary(runtime: str, containerd: list[str], tmp_path: Path) -> None:
    binary = os.environ["LXRUN_OCI_RUNTIME"] if runtime == "lxrun" else "runc"
    done = subprocess.run([*containerd, "run", "--rm", "--runc-binary", binary, f"docker.io/library/{IMAGE}",
                           f"ctr-{runtime}", "sh", "-c", "echo from ctr; id -u; exit 3"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout) == (3, "from ctr\n0\n"), done.stderr
    assert not subprocess.run([*containerd, "containers", "ls", "-q"], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_interactive_terminal(runtime: str, image: str, leaves_nothing: None) -> None:
    """docker run -it from a terminal (script(1) gives the client one): what is typed reaches the shell."""
    require(shutil.which("script") is not None, "script(1) is not installed (bsdutils)")
    client = f"docker run -it --rm --runtime {runtime} --network none {image} sh"
    done = subprocess.run(["script", "-qec", client, "/dev/null"], input="echo typed-$((1+2))\nexit 5\n",
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 5
    assert "typed-3" in done.stdout.replace("typed-$((1+2))", "")


@pytest.fixture
def bridge_network(image: str) -> Iterator[str]:
    """A user-defined bridge network (the private dockerd has no default bridge): docker's prestart hook
    (libnetwork-setkey) puts the container's veth into its network namespace."""
    name = f"lxrun-oci-{os.urandom(3).hex()}"
    docker("network", "create", "--driver", "bridge", "--subnet", "10.213.7.0/24", name)
    yield name
    docker("network", "rm", name, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_bridge_network_through_dockers_hook(runtime: str, image: str, bridge_network: str) -> None:
    done = docker("run", "--rm", "--runtime", runtime, "--network", bridge_network, "--ip", "10.213.7.9", image,
                  "sh", "-c", "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'", check=False)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "inet 10.213.7.9/24\n"), done.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_pause_unpause_update_and_top(runtime: str, image: str, leaves_nothing: None) -> None:
    """docker pause/unpause (runc pause/resume), docker update (runc update -r -, the resources on stdin),
    docker top (runc ps --format json, then docker's own ps)."""
    from tests.integration.test_oci import frozen

    name = f"verbs-{runtime}"
    docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", "--memory", "64m", image,
           "sh", "-c", "sleep 100 & sleep 100")  # fmt: skip
    try:
        pid = int(docker("inspect", "--format", "{{.State.Pid}}", name).stdout)
        docker("pause", name)
        assert docker("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
        assert frozen(pid)
        docker("unpause", name)
        assert docker("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
        assert not frozen(pid)
        docker("update", "--memory", "96m", "--memory-swap", "96m", name)
        limit = docker("exec", name, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
                       " || cat /sys/fs/cgroup/memory.max").stdout  # fmt: skip
        assert limit == f"{96 << 20}\n"
        top = docker("top", name).stdout.splitlines()
        assert "PID" in top[0].split() and sum("sleep 100" in line for line in top[1:]) == 2
        docker("pause", name)
        docker("rm", "-f", name)  # a paused container is killed and removed too
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    finally:
        docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_network_and_ipc_of_another_container(runtime: str, image: str, leaves_nothing: None) -> None:
    """--network/--ipc container:X: the runtime joins X's namespaces by path (as a Kubernetes pod's)."""
    name = f"pod-{runtime}"
    docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", "--ipc", "shareable", image,
           "sleep", "100")  # fmt: skip
    try:
        pid = docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        links = "for kind in net ipc pid; do readlink /proc/self/ns/$kind; done"
        done = docker("run", "--rm", "--runtime", runtime, "--network", f"container:{name}", "--ipc",
                      f"container:{name}", image, "sh", "-c", links, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        net, ipc, pid_ns = done.stdout.split()
        assert [net, ipc] == [os.readlink(f"/proc/{pid}/ns/{kind}") for kind in ("net", "ipc")]
        assert pid_ns != os.readlink(f"/proc/{pid}/ns/pid")
    finally:
        docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ulimit_oom_score_adj_and_sysctls_are_the_containers(runtime: str, image: str, leaves_nothing: None) -> None:
    """--ulimit, --oom-score-adj and --sysctl (ipc's and, in the container's own network namespace, net's)
    reach config.json; the process sees them, and `docker exec`'s process gets the limits too."""
    from tests.integration.test_oci import wait_for

    name = f"tuned-{runtime}"
    report = "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax"
    docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", "--ulimit", "nofile=512:1024",
           "--oom-score-adj", "500", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=123456789",
           image, "sh", "-c", f"({report}) > /tmp/report; touch /tmp/done; sleep 100")  # fmt: skip
    try:
        assert wait_for(lambda: docker("exec", name, "ls", "/tmp/done", check=False).returncode == 0)
        pid = int(docker("inspect", "--format", "{{.State.Pid}}", name).stdout)
        assert Path(f"/proc/{pid}/oom_score_adj").read_text() == "500\n"
        assert docker("exec", name, "cat", "/tmp/report").stdout == "512\n1024\n500\n1\n123456789\n"
        # runc 1.1's exec raises the soft NOFILE limit to the hard one (Go's start-up, runc#4195): hard only.
        done = docker("exec", name, "sh", "-c", "ulimit -Hn; cat /proc/self/oom_score_adj")
        assert done.stdout == "1024\n500\n"
        if runtime == "lxrun":
            assert docker("exec", name, "sh", "-c", "ulimit -n").stdout == "512\n"
    finally:
        docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_seccomp_profile_of_the_users(runtime: str, image: str, tmp_path: Path, leaves_nothing: None) -> None:
    """--security-opt seccomp=FILE reaches the runtime as config.json's linux.seccomp: that one is loaded."""
    from tests.integration.test_oci import NO_MKDIR, REFUSED_MKDIR

    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps(NO_MKDIR))
    done = run(runtime, "--security-opt", f"seccomp={profile}", image, "sh", "-c", "mkdir /tmp/x 2>&1; echo $?")
    assert (done.returncode, done.stdout) == (0, f"{REFUSED_MKDIR}\n1\n")
    done = run(runtime, image, "sh", "-c", "mkdir /tmp/x && echo made")  # docker's default profile allows it
    assert (done.returncode, done.stdout) == (0, "made\n"), done.stderr
