"""What is in use right now: the records in run/ of tasks and builds whose runner is alive.

A task's record (lxrun.state) names its stack as NAME@VERSION; a build's names the parent it runs on
and lists the layers it holds (the parent's and the one it is making), so neither `lxrun stack rm`
nor `lxrun gc --layers` takes them away underneath it. A record whose runner died is stale: its
sandbox died with the runner (the helper's parent-death signal), so it holds nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from lxrun.layout import Layout
from lxrun.state import read_record, runner_alive, runner_start

BUILD_PREFIX = "build-"


def _records(layout: Layout) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(path, record, whether its runner is alive) for each record in run/."""
    try:
        names = os.listdir(layout.run)
    except FileNotFoundError:
        return
    for name in names:
        path = f"{layout.run}/{name}"
        record = read_record(path)
        if record is not None:  # gone, or still being written: its runner checks again itself
            yield path, record, runner_alive(record)


def live_records(layout: Layout) -> list[dict[str, Any]]:
    return [record for _, record, alive in _records(layout) if alive]


def stale_build_records(layout: Layout) -> list[str]:
    """Records of builds whose process was killed before it could remove them."""
    return [
        path for path, _, alive in _records(layout) if not alive and os.path.basename(path).startswith(BUILD_PREFIX)
    ]


def refs_in_use(layout: Layout) -> set[str]:
    """NAME@VERSION of every stack a live task or build runs on."""
    return {record["stack"] for record in live_records(layout) if isinstance(record.get("stack"), str)}


@contextlib.contextmanager
def build_record(layout: Layout, building: str, parent: str, layers: Iterable[str]) -> Iterator[str]:
    """While a stack builds: run/build-<id>.json naming the parent ref it runs on and the layers it holds."""
    layout.ensure()
    path = f"{layout.run}/{BUILD_PREFIX}{os.urandom(6).hex()}.json"
    record = {
        "building": building,
        "stack": parent,
        "layers": list(layers),
        "runner_pid": os.getpid(),
        "runner_start": runner_start(),
        "created": time.time(),
    }
    with open(path, "x") as file:
        json.dump(record, file)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
