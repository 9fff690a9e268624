"""The cgroup trees of the lxc and docker backends (cgroups/tree.py) on the real hierarchies: tasks that
start while others end share one top, which the last task to end removes."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

from lxrun.cgroups.discover import own_hierarchies
from lxrun.cgroups.tree import TaskTree
from lxrun.spec import Limits

ROUNDS = 150
RUNNERS = 4


def test_tasks_starting_while_others_end_share_the_top_safely() -> None:
    top = f"lxrun-test-{uuid.uuid4().hex[:8]}"
    hierarchies = own_hierarchies()

    def runner(number: int) -> int:
        for round_number in range(ROUNDS):
            with TaskTree(f"t{number}-{round_number}", hierarchies, top).created(Limits()) as tree:
                assert tree.exists()
        return ROUNDS

    with ThreadPoolExecutor(RUNNERS) as pool:
        assert sum(pool.map(runner, range(RUNNERS))) == ROUNDS * RUNNERS
    assert not any(os.path.exists(h.path(top)) for h in hierarchies)
