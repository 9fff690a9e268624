"""podman (with conmon, the cgroupfs manager) running lxrun-oci next to runc (crun refuses this hybrid
cgroup host): `podman run --rm` on an imported image and on --rootfs DIR, `podman exec`, `podman stop`."""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration.test_oci import oci_command

RUNTIMES = ["lxrun", "runc"]
PODMAN_CGROUPS = "/sys/fs/cgroup/*/libpod_parent"
APPLETS = ("sh", "echo", "sleep", "id", "pwd", "true")
# This VM's hard limits: podman's default ulimits would exceed them (DESIGN.md's peer notes).
CONF = """[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
"""


@pytest.fixture(scope="module")
def lxrun_oci(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The runtime as one executable path, as podman takes it."""
    command = oci_command()
    if len(command) == 1:
        return command[0]
    wrapper = tmp_path_factory.mktemp("podman-runtime") / "lxrun-oci"
    checkout = Path(__file__).resolve().parents[2]
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={checkout} exec {" ".join(command)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(Path("/bin/busybox").is_file(), "busybox-static is not installed")
    root = tmp_path_factory.mktemp("podman-rootfs")
    root.chmod(0o755)  # the image's / (mktemp's is 0700: no other user could enter it)
    for directory in ("bin", "tmp", "etc", "proc", "sys", "dev"):
        (root / directory).mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    return root


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory, rootfs: Path, native_ready: None) -> Iterator[list[str]]:
    require(shutil.which("podman") is not None and shutil.which("conmon") is not None, "podman/conmon not installed")
    state = tmp_path_factory.mktemp("podman")
    (state / "containers.conf").write_text(CONF)
    os.environ["CONTAINERS_CONF"] = str(state / "containers.conf")
    command = ["podman", "--root", str(state / "root"), "--runroot", str(state / "run"), "--storage-driver", "vfs"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(str(rootfs), ".")
    imported = [*command, "import", "--change", "ENV PATH=/bin", "-", "lxrun-oci-test"]
    cgroups_before = set(glob.glob(PODMAN_CGROUPS))
    subprocess.run(imported, input=buffer.getvalue(), check=True, capture_output=True)
    yield command
    subprocess.run([*command, "rm", "-af"], capture_output=True)
    subprocess.run([*command, "rmi", "-af"], capture_output=True)
    del os.environ["CONTAINERS_CONF"]
    # The cgroupfs manager's parent stays behind (conmon's and the containers'), as under runc; nothing of
    # lxrun's below it (a container has its cgroup in every v1 hierarchy below its cgroupsPath, and delete
    # removes it). This run's, deepest first.
    made = set(glob.glob(PODMAN_CGROUPS)) - cgroups_before
    assert not [path for top in made for path, _, _ in os.walk(top) if "lxrun" in os.path.basename(path)]
    for top in made:
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: len(entry[0]), reverse=True):
            os.rmdir(directory)


def pod(podman: list[str], runtime: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*podman, "--runtime", runtime, *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, lxrun_oci: str) -> str:
    return lxrun_oci if request.param == "lxrun" else "runc"


def test_run_on_an_image_and_on_a_rootfs(podman: list[str], runtime: str, rootfs: Path) -> None:
    script = "echo from podman $WHO; id -u; pwd; exit 3"
    image = pod(podman, runtime, "run", "--rm", "--network", "none", "-e", "WHO=me", "-w", "/tmp", "-u", "1000",
                "lxrun-oci-test", "sh", "-c", script)  # fmt: skip
    assert (image.returncode, image.stdout) == (3, "from podman me\n1000\n/tmp\n"), image.stderr
    direct = pod(podman, runtime, "run", "--rm", "--network", "none", "--rootfs", str(rootfs), "sh", "-c", script)
    assert (direct.returncode, direct.stdout) == (3, "from podman\n0\n/\n"), direct.stderr
    assert not pod(podman, runtime, "ps", "-aq").stdout.strip()


def test_exec_and_stop(podman: list[str], runtime: str) -> None:
    name = f"pod-{os.urandom(3).hex()}"
    started = pod(podman, runtime, "run", "-d", "--name", name, "--network", "none", "lxrun-oci-test", "sleep", "100")
    assert started.returncode == 0, started.stderr
    try:
        done = pod(podman, runtime, "exec", "-u", "1000", name, "sh", "-c", "id -u; exit 5")
        assert (done.returncode, done.stdout) == (5, "1000\n"), done.stderr
        stopped = pod(podman, runtime, "stop", "-t", "1", name)  # sleep takes no SIGTERM: killed after 1 s
        assert stopped.returncode == 0, stopped.stderr
        code = pod(podman, runtime, "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "137"
    finally:
        pod(podman, runtime, "rm", "-f", name)
    deadline = time.monotonic() + 10
    while pod(podman, runtime, "ps", "-aq").stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pod(podman, runtime, "ps", "-aq").stdout.strip()
