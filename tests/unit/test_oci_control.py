"""lxrun-oci's control verbs without root: update's flags and fields, --interval, and the task cgroup's
apply/bounds/freeze on fake v1 and v2 trees in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.cgroups.v1 import V1TaskCgroup
from lxrun.cgroups.v2 import V2TaskCgroup
from lxrun.errors import SetupError, SpecError
from lxrun.oci.config import resource_limits
from lxrun.oci.control import parse_interval, resources_from_options
from lxrun.spec import Limits


def test_update_flags_become_linux_resources() -> None:
    options = {"--memory": "64m", "--memory-swap": "64m", "--cpu-quota": "50000", "--cpuset-cpus": "0", "--x": "1"}
    assert resources_from_options(options) == {
        "memory": {"limit": 64 << 20, "swap": 64 << 20},
        "cpu": {"quota": 50000, "cpus": "0"},
    }
    with pytest.raises(SpecError, match="--pids-limit"):
        resources_from_options({"--pids-limit": "many"})


def test_docker_update_resources_keep_what_is_zero() -> None:
    sent = {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "cpu": {"period": 0, "quota": 0, "cpus": ""}}
    assert resource_limits(sent) == Limits(memory=64 << 20)


def test_interval_is_a_go_duration() -> None:
    assert parse_interval("5s") == 5.0
    assert parse_interval("1m30s") == 90.0
    assert parse_interval("250ms") == 0.25
    for wrong in ("5", "s", "5x", "-1s", "0s"):
        with pytest.raises(SpecError, match="--interval"):
            parse_interval(wrong)


def fake_v1(tmp_path: Path, controllers: tuple[str, ...]) -> V1TaskCgroup:
    dirs = {}
    for controller in controllers:
        path = tmp_path / controller / "task"
        path.mkdir(parents=True)
        dirs[controller] = str(path)
    return V1TaskCgroup(dirs)


def test_v1_apply_writes_only_the_limits_given(tmp_path: Path) -> None:
    cgroup = fake_v1(tmp_path, ("memory", "pids", "freezer"))
    memory = tmp_path / "memory" / "task"
    (memory / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (memory / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "pids" / "task" / "pids.max").write_text("max\n")
    assert cgroup.bounds() == (None, None)
    cgroup.apply(Limits(memory=64 << 20))
    assert (memory / "memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(64 << 20)
    assert not (tmp_path / "pids" / "task" / "pids.max").read_text().startswith("4")
    cgroup.apply(Limits(pids=40))
    assert cgroup.bounds() == (64 << 20, 40)
    with pytest.raises(SpecError, match="cpus/cpu_shares"):  # no cpu cgroup of its own: the shared leaf's
        cgroup.apply(Limits(cpus=0.5))


def test_v1_freeze_and_thaw(tmp_path: Path) -> None:
    cgroup = fake_v1(tmp_path, ("freezer",))
    state = tmp_path / "freezer" / "task" / "freezer.state"
    state.write_text("THAWED\n")
    assert not cgroup.frozen()
    cgroup.freeze(True)
    assert state.read_text() == "FROZEN" and cgroup.frozen()
    cgroup.freeze(False)
    assert state.read_text() == "THAWED" and not cgroup.frozen()


def test_v2_freeze_that_never_completes_thaws_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "task").mkdir()
    cgroup = V2TaskCgroup(str(tmp_path / "task"))
    (tmp_path / "task" / "cgroup.freeze").write_text("0\n")
    (tmp_path / "task" / "cgroup.events").write_text("populated 1\nfrozen 0\n")  # a fake: never frozen
    with pytest.raises(SetupError, match="freeze"):
        cgroup.freeze(True)
    assert (tmp_path / "task" / "cgroup.freeze").read_text() == "0"
