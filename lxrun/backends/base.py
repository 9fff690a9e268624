"""The Backend protocol every backend implements, and what `run` hands to its on_start callback.

Imported for type checking and by tools that list backends; the task path itself never needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from lxrun.plan import TaskPlan
from lxrun.record import Record
from lxrun.result import Result


class TaskHandle(Protocol):
    """A task that has started: what a caller may do to it while `run` waits."""

    task_id: str

    def send_signal(self, sig: int) -> None: ...


OnStart = Callable[[TaskHandle], None]


class Probe(Record):
    """Whether a backend can run here, and if not, why (and how to fix it)."""

    __slots__ = ("available", "reason")
    available: bool
    reason: str

    def __init__(self, available: bool, reason: str) -> None:
        super().__init__(available=available, reason=reason)


class Backend(Protocol):
    name: str

    def probe(self) -> Probe: ...

    def refuse(self, plan: TaskPlan) -> None:
        """Raise Unsupported if this backend can't honour `plan`; called before `run`, nothing exists yet."""
        ...

    def run(self, plan: TaskPlan, on_start: OnStart | None = None) -> Result: ...

    def release_leftovers(self, task_id: str, record_data: Mapping[str, Any] | None, dry_run: bool) -> list[str]:
        """For `lxrun gc`: release what a task of this backend whose runner died holds (its record last);
        returns what was (or, dry, would be) released. `record_data` is None if the record is unreadable."""
        ...
