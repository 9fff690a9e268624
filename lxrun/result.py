"""The outcome of one task, as the Python API returns it and `--result-json` writes it."""

from __future__ import annotations

from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Result(Record):
    """How a task ended. `exit_code` follows docker run: the task's own code, or 128+N if signal N killed it.

    stdout/stderr hold the captured streams (None when they went to a descriptor); `upper_dir` is
    where the task's writes were kept (with keep=True).
    """

    __slots__ = (
        "backend",
        "exit_code",
        "name",
        "signal",
        "stack",
        "stderr",
        "stdout",
        "task_id",
        "upper_dir",
        "wall_time",
    )
    task_id: str
    name: str | None
    stack: str
    backend: str
    exit_code: int
    signal: int | None
    wall_time: float
    stdout: bytes | None
    stderr: bytes | None
    upper_dir: str | None

    def __init__(
        self,
        task_id: str,
        name: str | None,
        stack: str,
        backend: str,
        exit_code: int,
        signal: int | None,
        wall_time: float,
        stdout: bytes | None = None,
        stderr: bytes | None = None,
        upper_dir: str | None = None,
    ) -> None:
        super().__init__(
            task_id=task_id,
            name=name,
            stack=stack,
            backend=backend,
            exit_code=exit_code,
            signal=signal,
            wall_time=wall_time,
            stdout=stdout,
            stderr=stderr,
            upper_dir=upper_dir,
        )

    def to_json(self) -> dict[str, Any]:
        """Everything but the captured output, as JSON-ready values."""
        data = self.as_dict()
        del data["stdout"], data["stderr"]
        return data
