"""The one table from a task's Limits to cgroup file values: one pure function per cgroup version.

Every backend's limits come from here, so they can't differ: the v1 and v2 managers write these
files, the lxc backend's config names them as lxc.cgroup.* / lxc.cgroup2.* items, and the docker
backend hands the v1 values to dockerd under HostConfig's names (HostConfig speaks v1's units on
every host; dockerd and runc turn them into v2 files by the same rules as v2_files).

docker run's meaning throughout: --memory grants no swap (RAM+swap = RAM, as `--memory-swap` equal
to `--memory`), --cpus is a quota per 100 ms period, --cpu-shares is v1's weight and runc's mapping of
it onto cpu.weight. A file's controller is its name up to the first dot; the tables list files in
the order they must be written. Nothing here reads or writes a file: the host facts come as arguments.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxrun.spec import Limits

# The Limits field(s) each controller's files stand for: what an error about that controller names.
FIELDS_OF_CONTROLLER = {"memory": "memory", "cpu": "cpus/cpu_shares", "pids": "pids", "cpuset": "cpuset_cpus"}
CPU_PERIOD_US = 100_000  # the period --cpus is a share of, as docker's
MIN_CPU_QUOTA_US = 1000  # the kernel refuses a smaller quota


def cpu_quota_us(cpus: float) -> int:
    """--cpus as a quota per CPU_PERIOD_US, at least the kernel's 1 ms."""
    return max(MIN_CPU_QUOTA_US, round(cpus * CPU_PERIOD_US))


def shares_to_weight(shares: int) -> int:
    """docker's --cpu-shares (2..262144, default 1024) to cpu.weight (1..10000, default 100), as runc maps it."""
    return 1 + ((shares - 2) * 9999) // 262142


def controller_of(file: str) -> str:
    """The controller a table's file belongs to (its v1 hierarchy, its v2 subtree_control name)."""
    return file.partition(".")[0]


def v1_files(limits: Limits, swap_accounting: bool) -> dict[str, str]:
    """cgroup v1 file -> value. `swap_accounting`: the kernel has memory.memsw.* (swapaccount=1);
    without them, swappiness 0 is the nearest v1 has to no swap."""
    files = {}
    if limits.memory is not None:
        # memory before memory+swap: the kernel wants memsw >= memory at every step.
        files["memory.limit_in_bytes"] = str(limits.memory)
        if swap_accounting:
            files["memory.memsw.limit_in_bytes"] = str(limits.memory)
        else:
            files["memory.swappiness"] = "0"
    if limits.cpus is not None:
        files["cpu.cfs_period_us"] = str(CPU_PERIOD_US)
        files["cpu.cfs_quota_us"] = str(cpu_quota_us(limits.cpus))
    if limits.cpu_shares is not None:
        files["cpu.shares"] = str(limits.cpu_shares)
    if limits.pids is not None:
        files["pids.max"] = str(limits.pids)
    if limits.cpuset_cpus is not None:
        files["cpuset.cpus"] = limits.cpuset_cpus
    return files


def v2_files(limits: Limits, swap_accounting: bool) -> dict[str, str]:
    """cgroup v2 file -> value. `swap_accounting`: the kernel has memory.swap.max (v2 counts swap apart
    from RAM: the swap beyond RAM is 0); without it, there is nothing to write."""
    files = {}
    if limits.memory is not None:
        files["memory.max"] = str(limits.memory)
        if swap_accounting:
            files["memory.swap.max"] = "0"
    if limits.cpus is not None:
        files["cpu.max"] = f"{cpu_quota_us(limits.cpus)} {CPU_PERIOD_US}"
    if limits.cpu_shares is not None:
        files["cpu.weight"] = str(shares_to_weight(limits.cpu_shares))
    if limits.pids is not None:
        files["pids.max"] = str(limits.pids)
    if limits.cpuset_cpus is not None:
        files["cpuset.cpus"] = limits.cpuset_cpus
    return files
