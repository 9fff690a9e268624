"""The conformance suite: every test runs on every backend (`backend` fixture) against the same stack,
and warm: "warm" is native through a lxrun.Pool prepared for the task's stack, profile and limits, so
the same case checks a task handed to a prepared sandbox (one the pool can't serve runs cold and says
so in its notices, which `run` checks are only for the reasons a pool gives).

A backend that can't run here is skipped with its reason (a failure under LXRUN_MUST_WORK=1). What a
backend can't honour is a strict xfail with the reason, by `differs(...)`: the test still runs there and
must fail as the difference says, so the run turns red when it goes away. docs/backends.md lists the same.
After every test nothing may be left: mounts, task records, LXC's dirs, cgroups, containers, processes.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import lxrun
from lxrun import Result, TaskSpec
from lxrun.backends.base import OnStart
from lxrun.backends.lxc import LOCK_ROOT
from lxrun.runtime import BACKENDS, Runtime
from tests.conftest import require

# cgroup directories the lxc and docker backends create per task (cgroups/tree.py), in any hierarchy.
CGROUP_LEFTOVERS = ("/sys/fs/cgroup/*/lxrun-lxc", "/sys/fs/cgroup/*/*/*/lxrun-lxc", "/sys/fs/cgroup/*/lxrun-docker")


WARM = "warm"  # native, through a pool
NATIVE_LIKE = ("native", WARM)


# Native's cases (cold and warm) also run in the pure cgroup-v2 guest (make test-v2), which has no liblxc
# and no dockerd.
@pytest.fixture(
    params=[pytest.param(name, marks=pytest.mark.v2) if name in NATIVE_LIKE else name for name in [*BACKENDS, WARM]]
)
def backend(request: pytest.FixtureRequest, state_root: Path) -> str:
    name: str = request.param
    probe = Runtime(state_root).backend("native" if name == WARM else name).probe()
    require(probe.available, f"backend {name} can't run here: {probe.reason}")
    return name


def differs(
    request: pytest.FixtureRequest,
    backend: str,
    reasons: dict[str, str],
    raises: type[Exception] = AssertionError,
) -> None:
    """On a backend that can't honour what this test checks, expect the rest of the test to fail, saying
    why (see docs/backends.md). `raises` is how the difference shows: an assertion that doesn't hold, or
    the backend refusing the spec. Strict: a test that passes there fails the run."""
    if backend in reasons:
        reason = f"{backend}: {reasons[backend]}"
        request.applymarker(pytest.mark.xfail(strict=True, raises=raises, reason=reason))


def host_mounts() -> list[str]:
    """The host's mount table, less dockerd's own (it mounts exec-root/netns/default on the first
    --network host and keeps it: scripts/dockerd removes it with the daemon)."""
    host = os.environ.get("DOCKER_HOST", "")
    daemon_dir = os.path.dirname(host.removeprefix("unix://")) + "/" if host.startswith("unix://") else None
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    mounts = (line.split()[3:] for line in lines)
    return sorted(" ".join(fields) for fields in mounts if not (daemon_dir and fields[1].startswith(daemon_dir)))


def cgroup_leftovers() -> list[str]:
    return sorted(path for pattern in CGROUP_LEFTOVERS for path in glob.glob(pattern))


def lxrun_containers() -> list[str]:
    """Containers of lxrun tasks that dockerd still has (none when no dockerd is configured)."""
    if "DOCKER_HOST" not in os.environ:
        return []
    import docker

    client = docker.from_env(version="1.41")
    try:
        return [c["Id"] for c in client.api.containers(all=True, filters={"label": "lxrun.task"})]
    finally:
        client.close()


@pytest.fixture(autouse=True)
def leaves_nothing_behind(state_root: Path) -> Iterator[None]:
    mounts_before = host_mounts()
    lxc_lock_root = os.path.isdir(LOCK_ROOT)
    yield
    assert host_mounts() == mounts_before, "the host's mount table changed"
    assert list((state_root / "run").iterdir()) == [], "a task record was left in run/"
    assert list((state_root / "scratch").iterdir()) == [], "something was left in scratch/"
    assert not (state_root / "lxc").exists(), "LXC's task dirs were left"
    assert not os.path.exists(f"{LOCK_ROOT}{state_root}"), "LXC's lock dirs were left"
    assert os.path.isdir(LOCK_ROOT) or not lxc_lock_root, "liblxc's own lock dir was removed"
    assert cgroup_leftovers() == [], "a cgroup was left"
    assert lxrun_containers() == [], "a container was left"
    assert psutil.Process().children(recursive=True) == [], "a process was left running"


@pytest.fixture
def volume_dir() -> Iterator[Path]:
    """A host directory every backend's task can write to: pytest's tmp_path is private to root (0700),
    and a task's root may be an unprivileged host uid. On disk (/var/tmp): native idmaps volumes, and
    tmpfs takes that only from Linux 6.3 (the v2 guest has 6.1)."""
    path = Path(tempfile.mkdtemp(prefix="lxrun-volume-", dir="/var/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def run(spec: TaskSpec, backend: str, root: Path, on_start: OnStart | None = None) -> Result:
    """lxrun.run on `backend`; warm: through a pool of one sandbox made for this very spec."""
    if backend != WARM or spec.keep:  # a pool refuses a template that keeps its writes
        return lxrun.run(spec, backend="native" if backend == WARM else backend, root=root, on_start=on_start)
    with lxrun.Pool(spec, size=1, root=root) as pool:
        ready = pool.wait_ready()
        # With none prepared, it runs cold: and must fail as preparing did (a workdir that is a file).
        result = pool.run(spec, on_start=on_start)
    assert ready, f"no sandbox was prepared ({pool.failure}), yet the task ran cold"
    assert not [notice for notice in result.notices if notice.startswith("pool: ran cold")], result.notices
    return result


def backend_name(backend: str) -> str:
    """What a Result says its backend was: warm tasks are native's."""
    return "native" if backend == WARM else backend


def run_on(backend: str, root: Path, *argv: str, **kwargs: Any) -> Result:
    kwargs.setdefault("stack", "busybox")
    return run(TaskSpec(argv=argv, **kwargs), backend=backend, root=root)


def sh(backend: str, root: Path, script: str, **kwargs: Any) -> Result:
    return run_on(backend, root, "sh", "-c", script, **kwargs)
