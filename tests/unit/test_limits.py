from __future__ import annotations

import pytest

from lxrun.errors import SpecError
from lxrun.options import parse_int, parse_number, parse_size
from lxrun.spec import Limits, TaskSpec, parse_cpu_list


@pytest.mark.parametrize(
    ("text", "size"),
    [("256m", 256 << 20), ("1G", 1 << 30), ("512kb", 512 << 10), ("100", 100), ("1.5g", 3 << 29), ("10b", 10)],
)
def test_sizes_use_dockers_binary_units(text: str, size: int) -> None:
    assert parse_size("--memory", text) == size


@pytest.mark.parametrize("text", ["12zb", "m", "-1m", "", "1 g g", "0x10"])
def test_bad_sizes_name_the_option_and_the_fix(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_size("--memory", text)
    assert str(info.value).startswith(f"--memory {text or chr(39) * 2}: is not a size (use a number")


def test_numbers() -> None:
    assert parse_number("--cpus", "0.5", "e.g. 0.5") == 0.5
    for bad in ("abc", "nan", "inf"):
        with pytest.raises(SpecError, match="--cpus"):
            parse_number("--cpus", bad, "e.g. 0.5")
    assert parse_int("--pids-limit", "64", "e.g. 64") == 64
    with pytest.raises(SpecError, match="not a whole number"):
        parse_int("--pids-limit", "6.5", "e.g. 64")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory": 0}, "memory"),
        ({"memory": 1 << 20}, "below the minimum of 6m"),
        ({"cpus": 0}, "cpus"),
        ({"cpus": -1.0}, "cpus"),
        ({"cpu_shares": 1}, "cpu_shares"),
        ({"pids": 0}, "pids"),
        ({"cpuset_cpus": "1-0"}, "runs backwards"),
        ({"cpuset_cpus": "a"}, "not a CPU list"),
    ],
)
def test_bad_limits(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Limits(**kwargs)  # type: ignore[arg-type]


def test_limits_normalize_the_cpu_list() -> None:
    assert Limits(cpuset_cpus="1,0-1").cpuset_cpus == "0,1"
    assert parse_cpu_list("0-2,5") == [0, 1, 2, 5]
    assert not Limits().any and Limits(pids=10).any


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -3}, "timeout"),
        ({"stop_timeout": -1}, "stop_timeout"),
        ({"output_limit": 1}, "output_limit"),
    ],
)
def test_bad_timeouts_and_output_limit(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        TaskSpec(stack="busybox", argv=["true"], **kwargs)  # type: ignore[arg-type]
