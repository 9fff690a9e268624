"""The one table from Limits to cgroup files (cgroups/limits.py), and the backends' views of it."""

from __future__ import annotations

from lxrun.backends.docker import limit_options
from lxrun.cgroups.limits import controller_of, cpu_quota_us, shares_to_weight, v1_files, v2_files
from lxrun.spec import Limits

ALL = Limits(memory=64 << 20, cpus=0.5, cpu_shares=512, pids=20, cpuset_cpus="0-1")


def test_no_limits_no_files() -> None:
    assert v1_files(Limits(), swap_accounting=True) == {}
    assert v2_files(Limits(), swap_accounting=True) == {}


def test_v1_table_in_write_order() -> None:
    files = v1_files(ALL, swap_accounting=True)
    assert list(files.items()) == [
        ("memory.limit_in_bytes", "67108864"),
        ("memory.memsw.limit_in_bytes", "67108864"),  # RAM+swap = RAM: no swap, after memory
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "50000"),
        ("cpu.shares", "512"),
        ("pids.max", "20"),
        ("cpuset.cpus", "0,1"),
    ]


def test_v1_without_swap_accounting_turns_swapping_off_instead() -> None:
    files = v1_files(Limits(memory=64 << 20), swap_accounting=False)
    assert files == {"memory.limit_in_bytes": "67108864", "memory.swappiness": "0"}


def test_v2_table_in_write_order() -> None:
    files = v2_files(ALL, swap_accounting=True)
    assert list(files.items()) == [
        ("memory.max", "67108864"),
        ("memory.swap.max", "0"),
        ("cpu.max", "50000 100000"),
        ("cpu.weight", "20"),
        ("pids.max", "20"),
        ("cpuset.cpus", "0,1"),
    ]
    # A kernel without swap accounting has no memory.swap.max to write.
    assert v2_files(Limits(memory=64 << 20), swap_accounting=False) == {"memory.max": "67108864"}


def test_v2_is_what_runc_makes_of_the_v1_values() -> None:
    """docker hands dockerd the v1 values; runc turns them into v2 files by these rules."""
    v1, v2 = v1_files(ALL, swap_accounting=True), v2_files(ALL, swap_accounting=True)
    assert v2["cpu.max"] == f"{v1['cpu.cfs_quota_us']} {v1['cpu.cfs_period_us']}"
    assert int(v2["memory.swap.max"]) == int(v1["memory.memsw.limit_in_bytes"]) - int(v1["memory.limit_in_bytes"])
    assert v2["cpu.weight"] == str(shares_to_weight(int(v1["cpu.shares"])))
    assert (v2["pids.max"], v2["cpuset.cpus"]) == (v1["pids.max"], v1["cpuset.cpus"])


def test_a_cpu_quota_is_at_least_the_kernels_millisecond() -> None:
    assert cpu_quota_us(0.001) == 1000
    assert cpu_quota_us(1.5) == 150000
    assert cpu_quota_us(1 / 3) == 33333
    assert v2_files(Limits(cpus=0.001), swap_accounting=True)["cpu.max"] == "1000 100000"


def test_a_files_controller_is_its_prefix() -> None:
    controllers = {controller_of(name) for name in v1_files(ALL, swap_accounting=False)}
    assert controllers == {"memory", "cpu", "pids", "cpuset"}
    assert controller_of("memory.swap.max") == "memory"


def test_dockers_host_config_carries_the_v1_values() -> None:
    assert limit_options(ALL, swap_accounting=True) == {
        "mem_limit": 64 << 20,
        "memswap_limit": 64 << 20,
        "cpu_period": 100000,
        "cpu_quota": 50000,
        "cpu_shares": 512,
        "pids_limit": 20,
        "cpuset_cpus": "0,1",
    }
    assert limit_options(Limits(memory=64 << 20, cpus=0.001), swap_accounting=False) == {
        "mem_limit": 64 << 20,
        "mem_swappiness": 0,
        "cpu_period": 100000,
        "cpu_quota": 1000,  # the same floor as native's and lxc's, not a NanoCpus of its own
    }
