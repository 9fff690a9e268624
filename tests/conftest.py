"""Shared test set-up. A test that needs what this host lacks is skipped with the reason, unless
LXRUN_MUST_WORK=1 (as in CI), where that skip becomes a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

MUST_WORK = os.environ.get("LXRUN_MUST_WORK") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip (or, under LXRUN_MUST_WORK=1, fail) when the host can't run this test."""
    if condition:
        return
    if MUST_WORK:
        pytest.fail(f"LXRUN_MUST_WORK=1 but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def native_ready() -> None:
    from lxrun.backends.native import NativeBackend
    from lxrun.layout import Layout

    probe = NativeBackend(Layout(Path("/nonexistent"))).probe()
    require(probe.available, f"native backend unavailable: {probe.reason}")


@pytest.fixture(scope="session")
def state_root(tmp_path_factory: pytest.TempPathFactory, native_ready: None) -> Iterator[Path]:
    """A state root with the busybox base built, shared by the session."""
    from lxrun.layout import Layout
    from lxrun.store.bases import build_base
    from lxrun.store.specs import find_spec, load_base_spec

    root = tmp_path_factory.mktemp("lxrun-root")
    require(Path("/bin/busybox").is_file(), "busybox-static is not installed (apt-get install busybox-static)")
    build_base(load_base_spec(find_spec("rootfs", "busybox")), Layout(root))
    yield root


@pytest.fixture(scope="session", autouse=True)
def remove_idle_cgroup_parents() -> Iterator[None]:
    """Task cgroups go in `lxrun/` parents that outlive tasks (as `lxrun gc` would, remove them at the end)."""
    yield
    if os.geteuid() != 0:
        return
    from lxrun.cgroups import detect
    from lxrun.cgroups.discover import cgroup_mounts, own_cgroups
    from lxrun.cgroups.v2 import V2Manager

    detect().remove_idle_parents()
    _, mount = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
    _, own = own_cgroups(Path("/proc/self/cgroup").read_text())
    if mount is not None and own is not None:
        V2Manager(mount, own).remove_idle_parents()
