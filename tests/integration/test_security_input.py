"""Bad security input: one clear line, exit 125, nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxrun import TaskSpec
from lxrun.backends.native import NativeBackend
from lxrun.errors import SetupError
from lxrun.layout import Layout
from lxrun.plan import plan_task
from lxrun.sandbox.userns import IdPool, take_range
from lxrun.store.stacks import StackStore

from .conftest import lxrun_cli

pytestmark = pytest.mark.v2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--security-opt", "seccomp=/nonexistent/profile.json"], "No such file or directory"),
        (["--security-opt", "seccomp={bad}"], "is not valid JSON"),
        (["--security-opt", "seccomp={unknown_action}"], "syscalls[0]: unknown action 'SCMP_ACT_EXPLODE'"),
        (["--cap-add", "SUPERPOWER"], "--cap-add SUPERPOWER: is not a capability"),
        (["--cap-drop", "NOPE"], "--cap-drop NOPE: is not a capability"),
        (["--user", "root"], "--user root: must be UID or UID:GID, in numbers"),
        (["--security-opt", "label=disable"], "--security-opt label=disable: is not supported"),
    ],
)
def test_bad_security_options(state_root: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "unknown.json").write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_EXPLODE"}]}'
    )
    args = [
        a.replace("{bad}", str(tmp_path / "bad.json")).replace("{unknown_action}", str(tmp_path / "unknown.json"))
        for a in args
    ]
    done = lxrun_cli(state_root, "exec", "--stack", "busybox", *args, "--", "true")
    assert (done.returncode, done.stderr.count("\n")) == (125, 1), done.stderr
    assert message in done.stderr
    assert list((state_root / "run").iterdir()) == []


def test_an_exhausted_uid_pool_is_refused_and_creates_nothing(state_root: Path) -> None:
    layout = Layout(state_root)
    pool = IdPool(uid_start=1_500_000_000, gid_start=1_500_000_000, ranges=1)
    backend = NativeBackend(layout, id_pool=pool)
    plan = plan_task(TaskSpec(stack="busybox", argv=["true"]), StackStore(layout).resolve("busybox"))
    held = take_range(layout, pool)  # another task holds the only range
    with held, pytest.raises(SetupError, match=r"^uid pool .*: all 1 ranges are in use \(wait for tasks to end"):
        backend.run(plan)
    assert list((state_root / "run").iterdir()) == []
    assert backend.run(plan_task(plan.spec, plan.stack)).exit_code == 0  # and free again once released
