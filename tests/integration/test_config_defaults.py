"""The host's defaults for tasks on the real kernel: a task without flags is bounded by the shipped
values, a config.toml in the state root changes them, a flag or an explicit value wins (lxrun.config).

These tests use a state root of their own: its config.toml must not reach other tests' tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lxrun import TaskSpec
from lxrun.backends.base import TaskHandle
from lxrun.cgroups import detect
from lxrun.layout import HOST_CONFIG, Layout
from lxrun.runtime import Runtime
from lxrun.spec import UNLIMITED, Limits
from lxrun.store.bases import build_base
from lxrun.store.specs import find_spec, load_base_spec
from tests.conftest import require

from .conftest import lxrun_cli
from .test_limits import task_cgroup_dir


@pytest.fixture(scope="module")
def own_root(tmp_path_factory: pytest.TempPathFactory, native_ready: None) -> Path:
    require(Path("/bin/busybox").is_file(), "busybox-static is not installed (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("lxrun-config-root")
    build_base(load_base_spec(find_spec("rootfs", "busybox")), Layout(root))
    return root


@pytest.fixture
def root_config(own_root: Path) -> Iterator[Path]:
    """Where the state root's config goes; removed after the test."""
    path = own_root / "config.toml"
    yield path
    path.unlink(missing_ok=True)


def bounds(root: Path, **kwargs: object) -> tuple[str, str, str]:
    """(pids.max, the memory limit, `df -k` of / and /tmp) of a task run by a new Runtime on `root`."""
    memory_file = "memory.limit_in_bytes" if detect().version == "v1" else "memory.max"
    seen: list[str] = []

    def look(handle: TaskHandle) -> None:
        seen.append((task_cgroup_dir("pids", handle.task_id) / "pids.max").read_text().strip())
        seen.append((task_cgroup_dir("memory", handle.task_id) / memory_file).read_text().strip())

    spec = TaskSpec(stack="busybox", argv=["sh", "-c", "df -k / /tmp | awk 'NR > 1 { print $2 }'"], **kwargs)  # type: ignore[arg-type]
    result = Runtime(root).run(spec, on_start=look)
    assert result.exit_code == 0, result.stderr
    return seen[0], seen[1], " ".join((result.stdout or b"").decode().split())


def test_a_task_without_flags_gets_the_shipped_bounds(own_root: Path) -> None:
    require(not Path(HOST_CONFIG).exists(), f"{HOST_CONFIG} sets this host's own defaults")
    assert bounds(own_root) == ("4096", str(2 << 30), "1048576 1048576")


def test_the_state_roots_config_changes_them_and_a_given_value_wins(own_root: Path, root_config: Path) -> None:
    root_config.write_text('[defaults]\npids = 50\nmemory = "256m"\ndisk = "64m"\n')
    assert bounds(own_root) == ("50", str(256 << 20), "65536 65536")
    given = bounds(own_root, limits=Limits(pids=UNLIMITED, memory=128 << 20), disk=32 << 20)
    assert given == ("max", str(128 << 20), "32768 32768")


def test_flags_override_the_config_and_minus_one_lifts_a_bound(own_root: Path, root_config: Path) -> None:
    root_config.write_text('[defaults]\ndisk = "64m"\n')
    script = "df -k /tmp | awk 'NR > 1 { print $2 }'"
    assert lxrun_cli(own_root, "exec", "--stack", "busybox", "--", "sh", "-c", script).stdout == "65536\n"
    done = lxrun_cli(own_root, "exec", "--stack", "busybox", "--disk", "16m", "--", "sh", "-c", script)
    assert done.stdout == "16384\n"
    done = lxrun_cli(own_root, "exec", "--stack", "busybox", "--disk", "-1", "--", "sh", "-c", script)
    assert done.stdout == f"{256 << 10}\n"  # /tmp's own cap without a disk bound


def test_a_bad_config_is_one_line_and_125_naming_the_file_and_key(own_root: Path, root_config: Path) -> None:
    root_config.write_text("[defaults]\npids = 0\n")
    done = lxrun_cli(own_root, "exec", "--stack", "busybox", "--", "true")
    assert (done.returncode, done.stderr.count("\n")) == (125, 1), done.stderr
    assert done.stderr.startswith(f"lxrun: config {root_config}: defaults.pids: 0 allows no process"), done.stderr
