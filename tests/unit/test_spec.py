from __future__ import annotations

import pytest

from lxrun.errors import SpecError
from lxrun.spec import TaskSpec, Volume, check_container_path, check_hostname, check_stack_ref


def spec(**kwargs: object) -> TaskSpec:
    values: dict[str, object] = {"stack": "busybox", "argv": ("true",)}
    values.update(kwargs)
    return TaskSpec(**values)  # type: ignore[arg-type]


def test_a_valid_spec_is_normalized() -> None:
    task = spec(argv=["echo", "hi"], env={"A": "1"}, workdir="/srv//app/", volumes=[Volume("/tmp", "/data/")])
    assert task.argv == ("echo", "hi")
    assert task.workdir == "/srv/app"
    assert task.volumes[0].target == "/data"
    assert dict(task.env) == {"A": "1"}


def test_a_spec_cannot_be_changed_after_creation() -> None:
    task = spec(env={"A": "1"})
    with pytest.raises(TypeError):
        task.env["A"] = "2"  # type: ignore[index]
    with pytest.raises(AttributeError, match="immutable"):
        task.stack = "other"  # type: ignore[misc]
    assert task.replace(stack="other").stack == "other"
    with pytest.raises(SpecError):
        task.replace(workdir="relative")


@pytest.mark.parametrize("argv", [(), ("",)])
def test_no_command_is_refused_with_a_hint(argv: tuple[str, ...]) -> None:
    with pytest.raises(SpecError, match=r"no command given.*put the command after --"):
        spec(argv=argv)


@pytest.mark.parametrize("path", ["relative/dir", "/a/../b", ".."])
def test_container_paths_must_be_absolute_without_dotdot(path: str) -> None:
    with pytest.raises(SpecError) as info:
        check_container_path("workdir", path)
    assert info.value.step == "workdir"
    assert path in str(info.value)


@pytest.mark.parametrize("ref", ["a/b", "..", "x@../y", "", "@1", "-x"])
def test_bad_stack_references(ref: str) -> None:
    with pytest.raises(SpecError, match="stack"):
        check_stack_ref(ref)


def test_stack_reference_with_version() -> None:
    assert check_stack_ref("python3.11@1.2") == ("python3.11", "1.2")
    assert check_stack_ref("busybox") == ("busybox", None)


@pytest.mark.parametrize("env", [{"": "x"}, {"A=B": "x"}, {"A": "x\0y"}])
def test_bad_env(env: dict[str, str]) -> None:
    with pytest.raises(SpecError, match="env"):
        spec(env=env)


@pytest.mark.parametrize("hostname", ["-bad", "a" * 65, "under_score", "a..b"])
def test_bad_hostnames(hostname: str) -> None:
    with pytest.raises(SpecError, match="hostname"):
        check_hostname(hostname)


def test_good_hostnames() -> None:
    check_hostname("task-1.example")
    check_hostname("a" * 63)


def test_bad_task_name() -> None:
    with pytest.raises(SpecError, match="name"):
        spec(name="has space")


def test_volume_checks() -> None:
    with pytest.raises(SpecError, match="host path must be absolute"):
        Volume("rel", "/x")
    with pytest.raises(SpecError, match="sandbox's root"):
        Volume("/tmp", "/")
    with pytest.raises(SpecError, match="given twice"):
        spec(volumes=[Volume("/tmp", "/x"), Volume("/var", "/x/")])


@pytest.mark.parametrize(
    ("target", "where"),
    [("/proc", "/proc"), ("/proc/sys/", "/proc"), ("/proc/1/root", "/proc"), ("/dev", "/dev"), ("/sys", "/sys")],
)
def test_volumes_over_what_the_sandbox_mounts_are_refused(target: str, where: str) -> None:
    with pytest.raises(SpecError, match=rf"^volume {target.rstrip('/')}: the sandbox mounts its own {where} there"):
        Volume("/srv", target)


@pytest.mark.parametrize(
    "target", ["/proc/meminfo", "/proc/sys/kernel/ns_last_pid", "/dev/shm", "/sys/fs/cgroup", "/processes"]
)
def test_lxcfs_files_and_paths_below_dev_and_sys_may_be_covered(target: str) -> None:
    assert Volume("/srv", target).target == target


def test_negative_descriptor_is_refused() -> None:
    with pytest.raises(SpecError, match="stdin"):
        spec(stdin=-1)
