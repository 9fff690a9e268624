"""Address allocation: which addresses are tried in which order, and flock leases across threads and
processes (no root needed: leases are plain files in a temporary directory)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lxrun.errors import SetupError
from lxrun.net import leases
from lxrun.net.config import NetworkConfig

SMALL = NetworkConfig(subnet="10.213.0.0/29")  # .1 the bridge, .2-.6 for tasks, .7 broadcast


def test_candidates_skip_network_bridge_and_broadcast_lowest_first() -> None:
    assert list(leases.candidates(SMALL, [])) == [f"10.213.0.{n}" for n in range(2, 7)]


def test_candidates_try_addresses_without_a_file_before_maybe_stale_ones() -> None:
    files = ["10.213.0.3", "10.213.0.2", "junk", "10.99.0.5", "10.213.0.1"]
    assert list(leases.candidates(SMALL, files)) == [
        "10.213.0.4",
        "10.213.0.5",
        "10.213.0.6",
        "10.213.0.2",
        "10.213.0.3",
    ]


def test_a_lease_is_exclusive_until_released(tmp_path: Path) -> None:
    first = leases.acquire(str(tmp_path), SMALL, "task-a")
    second = leases.acquire(str(tmp_path), SMALL, "task-b")
    assert (first.address, second.address) == ("10.213.0.2", "10.213.0.3")
    assert not first.stale and not second.stale
    assert (tmp_path / "10.213.0.2").read_text() == f"task-a {os.getpid()}\n"
    assert leases.take(str(tmp_path), "10.213.0.2", "task-c") is None
    first.release()
    first.release()  # idempotent
    assert sorted(os.listdir(tmp_path)) == ["10.213.0.3"]
    with leases.acquire(str(tmp_path), SMALL, "task-c") as third:
        assert third.address == "10.213.0.2"
    second.release()
    assert os.listdir(tmp_path) == []


def test_exhaustion_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    held = [leases.acquire(str(tmp_path), SMALL, f"t{n}") for n in range(5)]
    with pytest.raises(SetupError) as info:
        leases.acquire(str(tmp_path), SMALL, "one-too-many")
    assert str(info.value) == (
        f"address {tmp_path}: no free address left in 10.213.0.0/29 "
        "(wait for tasks to end; for more at once, set LXRUN_SUBNET to a larger range while none runs)"
    )
    for lease in held:
        lease.release()


def test_threads_get_distinct_addresses(tmp_path: Path) -> None:
    config = NetworkConfig(subnet="10.213.0.0/24")
    got: list[leases.Lease] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def take_one(n: int) -> None:
        start.wait()
        lease = leases.acquire(str(tmp_path), config, f"t{n}")
        with lock:
            got.append(lease)

    threads = [threading.Thread(target=take_one, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({lease.address for lease in got}) == 16
    for lease in got:
        lease.release()
    assert os.listdir(tmp_path) == []


def test_a_dead_holders_lease_is_free_again_and_marked_stale(tmp_path: Path) -> None:
    """A process that dies holding a lease leaves its file, but not its lock."""
    code = (
        "import os, sys; from lxrun.net import leases; from lxrun.net.config import NetworkConfig; "
        f"lease = leases.acquire(sys.argv[1], NetworkConfig(subnet='{SMALL.subnet}'), 'crashed'); os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert (tmp_path / "10.213.0.2").read_text().startswith("crashed ")
    fresh = leases.acquire(str(tmp_path), SMALL, "next")
    assert (fresh.address, fresh.stale) == ("10.213.0.3", False)  # files without leases are tried first
    reused = leases.take(str(tmp_path), "10.213.0.2", "next")
    assert reused is not None and reused.stale
    assert (tmp_path / "10.213.0.2").read_text() == f"next {os.getpid()}\n"
    reused.release()
    fresh.release()


def test_processes_racing_for_addresses_never_share_one(tmp_path: Path) -> None:
    code = (
        "import sys, time; from lxrun.net import leases; from lxrun.net.config import NetworkConfig; "
        "config = NetworkConfig(subnet='10.213.0.0/24'); "
        "held = [leases.acquire(sys.argv[1], config, 'p') for _ in range(10)]; "
        "print(' '.join(lease.address for lease in held), flush=True); sys.stdin.read(); "
        "[lease.release() for lease in held]"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    addresses = []
    for child in children:
        assert child.stdout is not None
        addresses += child.stdout.readline().split()
    for child in children:
        child.communicate("")
    assert len(addresses) == 40 and len(set(addresses)) == 40
    assert os.listdir(tmp_path) == []
