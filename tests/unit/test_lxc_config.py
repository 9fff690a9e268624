from __future__ import annotations

from pathlib import Path

import pytest

from lxrun.backends.lxc import prepare_workdir
from lxrun.backends.lxc_config import LxcPaths, limit_lines, render
from lxrun.cgroups.limits import shares_to_weight
from lxrun.cgroups.tree import TaskTree
from lxrun.errors import ChildSetupError, Unsupported
from lxrun.plan import plan_task
from lxrun.spec import Limits, TaskSpec, Volume
from lxrun.store.stacks import ResolvedStack

STACK = ResolvedStack("py", "1", ["base", "diff"], ["/layers/base", "/layers/diff"], {"LANG": "C.UTF-8"})
PATHS = LxcPaths("/t/upper", "/t/log", "/lib/init", "/cg/memory.oom_control", "/t/oom copy")


def config(tmp_path: Path, **kwargs: object) -> list[str]:
    spec = TaskSpec(stack="py", argv=["true"], **kwargs)  # type: ignore[arg-type]
    plan = plan_task(spec, STACK, task_id="abc")
    return render(plan, PATHS, TaskTree("abc", [], "lxrun-lxc"), legacy=True, swap_accounting=True).splitlines()


def test_the_sandbox(tmp_path: Path) -> None:
    lines = config(tmp_path, name="job", workdir="/srv", env={"A": "b c"})
    assert "lxc.rootfs.path = overlay:/layers/diff:/layers/base:/t/upper" in lines  # top-most lower first
    assert "lxc.uts.name = job" in lines
    assert "lxc.net.0.type = empty" in lines and "lxc.net.0.flags = up" in lines
    assert "lxc.init.cwd = /srv" in lines
    assert "lxc.environment = A=b c" in lines and "lxc.environment = LANG=C.UTF-8" in lines
    assert "lxc.cgroup.dir.container = lxrun-lxc/abc/task/ct" in lines
    assert "lxc.mount.entry = /lib/init dev/.lxrun-init none bind,ro,create=file 0 0" in lines
    assert "lxc.hook.stop = cat /cg/memory.oom_control > '/t/oom copy' #" in lines
    assert not any("common.conf" in line or "lxc.include" in line for line in lines)


def test_volumes_are_escaped_and_read_only_when_asked(tmp_path: Path) -> None:
    source = tmp_path / "in put"
    source.mkdir()
    lines = config(tmp_path, volumes=[Volume(str(source), "/data dir", read_only=True)])
    escaped = str(source).replace(" ", "\\040")
    assert f"lxc.mount.entry = {escaped} data\\040dir none rbind,create=dir,ro 0 0" in lines


def test_a_line_break_in_a_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match="env A: contains a line break"):
        config(tmp_path, env={"A": "x\nlxc.init.cmd = /evil"})


def test_v1_limits_put_memory_before_memory_and_swap() -> None:
    lines = limit_lines(Limits(memory=64 << 20, cpus=0.5, cpu_shares=512, pids=20, cpuset_cpus="0-1"), True, True)
    assert lines == [
        "lxc.cgroup.memory.limit_in_bytes = 67108864",
        "lxc.cgroup.memory.memsw.limit_in_bytes = 67108864",
        "lxc.cgroup.cpu.cfs_period_us = 100000",
        "lxc.cgroup.cpu.cfs_quota_us = 50000",
        "lxc.cgroup.cpu.shares = 512",
        "lxc.cgroup.pids.max = 20",
        "lxc.cgroup.cpuset.cpus = 0,1",
    ]


def test_v2_limits() -> None:
    lines = limit_lines(Limits(memory=64 << 20, cpus=1.5, cpu_shares=1024, pids=20, cpuset_cpus="1"), False, True)
    assert lines == [
        "lxc.cgroup2.memory.max = 67108864",
        "lxc.cgroup2.memory.swap.max = 0",
        "lxc.cgroup2.cpu.max = 150000 100000",
        "lxc.cgroup2.cpu.weight = 39",
        "lxc.cgroup2.pids.max = 20",
        "lxc.cgroup2.cpuset.cpus = 1",
    ]
    assert (shares_to_weight(2), shares_to_weight(262144)) == (1, 10000)


def test_workdir_is_made_in_the_upper_dir_only_where_no_layer_has_it(tmp_path: Path) -> None:
    base, diff, upper = tmp_path / "base", tmp_path / "diff", tmp_path / "upper"
    (base / "srv").mkdir(parents=True)
    (diff / "etc").mkdir(parents=True)
    (diff / "etc/passwd").write_text("")
    (diff / "link").symlink_to("/elsewhere")
    upper.mkdir()
    layers = (str(base), str(diff))
    prepare_workdir(layers, str(upper), "/srv")
    assert list(upper.iterdir()) == []
    prepare_workdir(layers, str(upper), "/srv/app/x")
    assert (upper / "srv/app/x").is_dir()
    prepare_workdir(layers, str(upper), "/link/x")
    assert not (upper / "link").exists()  # resolved in the sandbox, never on the host
    with pytest.raises(ChildSetupError, match="workdir /etc/passwd/x: Not a directory"):
        prepare_workdir(layers, str(upper), "/etc/passwd/x")
