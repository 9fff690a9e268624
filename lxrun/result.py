"""The outcome of one task, as the Python API returns it and `--result-json` writes it."""

from __future__ import annotations

import os

from lxrun.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxrun.cgroups.base import Usage


class Result(Record):
    """How a task ended. `exit_code` follows docker run: the task's own code, or 128+N if signal N killed it.

    stdout/stderr hold the captured streams (None when they went to a descriptor); `upper_dir` is
    where the task's writes were kept (with keep=True). `oom_killed` comes from the kernel's memory
    controller, never from the exit code; cpu_user/cpu_system are seconds, peak_memory bytes,
    pids_peak the most tasks at once, each None where the backend or the kernel can't tell.
    `notices` are what lxrun changed on the host for the task and the operator should know (e.g. that
    it turned IPv4 forwarding on for bridge networking).
    """

    __slots__ = (
        "backend",
        "cpu_system",
        "cpu_user",
        "exit_code",
        "name",
        "notices",
        "oom_killed",
        "output_truncated",
        "peak_memory",
        "pids_peak",
        "signal",
        "stack",
        "stderr",
        "stdout",
        "task_id",
        "timed_out",
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
    oom_killed: bool
    timed_out: bool
    cpu_user: float | None
    cpu_system: float | None
    peak_memory: int | None
    pids_peak: int | None
    output_truncated: bool
    notices: tuple[str, ...]

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
        oom_killed: bool = False,
        timed_out: bool = False,
        cpu_user: float | None = None,
        cpu_system: float | None = None,
        peak_memory: int | None = None,
        pids_peak: int | None = None,
        output_truncated: bool = False,
        notices: tuple[str, ...] = (),
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
            oom_killed=oom_killed,
            timed_out=timed_out,
            cpu_user=cpu_user,
            cpu_system=cpu_system,
            peak_memory=peak_memory,
            pids_peak=pids_peak,
            output_truncated=output_truncated,
            notices=notices,
        )

    @classmethod
    def from_wait_status(cls, status: int, usage: Usage, **fields: Any) -> Result:
        """The result of a task whose pid 1 ended with wait status `status`, having used `usage`."""
        signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return cls(
            exit_code=128 + signal_number if signal_number else os.WEXITSTATUS(status),
            signal=signal_number,
            oom_killed=usage.oom_killed,
            cpu_user=usage.cpu_user,
            cpu_system=usage.cpu_system,
            peak_memory=usage.peak_memory,
            pids_peak=usage.pids_peak,
            **fields,
        )

    def to_json(self) -> dict[str, Any]:
        """Everything but the captured output, as JSON-ready values."""
        data = self.as_dict()
        del data["stdout"], data["stderr"]
        return data
