"""Many tasks, in a row and at once: each gets its own sandbox, and none leaves anything behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import sh

pytestmark = pytest.mark.v2


def test_fifty_tasks_in_a_row(state_root: Path) -> None:
    for number in range(50):
        result = sh(state_root, f"echo {number} > /tmp/n; cat /tmp/n; ls /root | wc -l")
        assert result.stdout == f"{number}\n0\n".encode()


def test_eight_at_once_from_threads(state_root: Path) -> None:
    def task(number: int) -> tuple[int, bytes | None, str]:
        result = sh(state_root, f"sleep 0.2; echo {number}; hostname", name=f"t{number}")
        return result.exit_code, result.stdout, result.task_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(task, range(8)))
    assert [code for code, _, _ in results] == [0] * 8
    assert [out for _, out, _ in results] == [f"{n}\nt{n}\n".encode() for n in range(8)]
    assert len({task_id for _, _, task_id in results}) == 8
