"""The warm pools of `lxrun serve --pool STACK[=N]`: one lxrun.Pool per stack on the server's state
root. A client's task on such a stack (native backend, the same root) goes to its pool, which runs it
warm where it can and cold where not; any other task runs cold, as `lxrun exec` would run it. Which
way a task ran is the server's business, not the client's: the pool's notice goes to the server's log.
"""

from __future__ import annotations

import os
import sys

from lxrun import run
from lxrun.errors import SetupError, SpecError
from lxrun.pool import Pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from lxrun.backends.base import OnStart
    from lxrun.result import Result
    from lxrun.spec import TaskSpec

DEFAULT_SIZE = 4
READY_WAIT = 60.0  # seconds a pool may take to prepare its sandboxes before the server gives up
POOL_NOTICE = "pool: "


def parse_pool(value: str) -> tuple[str, int]:
    """--pool STACK[=N] -> (stack, N)."""
    stack, _, size = value.partition("=")
    if not stack or (size and not (size.isascii() and size.isdigit() and int(size) >= 1)):
        raise SpecError("--pool", "expects STACK or STACK=N (N sandboxes, at least 1)", path=value)
    return stack, int(size) if size else DEFAULT_SIZE


class ServerPools:
    """The server's pools; `run` is what its sessions run tasks with (Caller.runner)."""

    def __init__(self, root: str, pools: Iterable[tuple[str, int]]) -> None:
        self.root = os.path.realpath(root)
        self._pools: dict[str, Pool] = {}
        try:
            for stack, size in pools:
                self._pools[stack] = Pool(stack, size, root=self.root)
            for stack, pool in self._pools.items():  # the server listens once its pools are full
                if not pool.wait_ready(timeout=READY_WAIT):
                    raise pool.failure or SetupError("pool", f"not ready in {READY_WAIT:.0f} s", path=stack)
        except BaseException:
            self.close()
            raise

    def run(self, spec: TaskSpec, backend: str, root: str, on_start: OnStart | None) -> Result:
        pool = self._pools.get(spec.stack)
        if pool is None or backend != "native" or os.path.realpath(root) != self.root:
            return run(spec, backend=backend, root=root, on_start=on_start)
        result = pool.run(spec, on_start=on_start)
        ours = [notice for notice in result.notices if notice.startswith(POOL_NOTICE)]
        for notice in ours:
            print(f"lxrun serve: task {result.task_id}: {notice}", file=sys.stderr, flush=True)
        return result.replace(notices=tuple(n for n in result.notices if not n.startswith(POOL_NOTICE)))

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
