"""`lxrun exec` passes on every signal it can, as docker's sig-proxy does, and lives to release the task;
a reader that leaves lxrun's output ends the task as it would have ended writing to that reader."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from .conftest import LXRUN, finish


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LXRUN, "exec", "--root", str(root), "--stack", "busybox", *args], stdout=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize(
    "sig",
    [signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGRTMIN + 2, signal.SIGWINCH, signal.SIGALRM],
    ids=["USR1", "USR2", "TERM", "RTMIN+2", "WINCH", "ALRM"],
)
def test_a_signal_reaches_the_task_and_lxrun_releases_it(state_root: Path, sig: int) -> None:
    script = f"trap 'echo caught; exit 7' {int(sig)}; echo ready; while :; do sleep 0.05; done"
    proc = start(state_root, "--", "sh", "-c", script)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(sig)
    assert finish(proc) == 7  # the task's own exit: lxrun lived on to collect it
    assert proc.stdout.read() == "caught\n"
    # and released it: the state root's autouse check finds no record, the task's cgroup went with it
    assert not list((state_root / "run").iterdir())


def test_tstp_stops_the_task_not_lxrun(state_root: Path) -> None:
    script = "trap 'echo stopped; exit 6' TSTP; echo ready; while :; do sleep 0.05; done"
    proc = start(state_root, "--", "sh", "-c", script)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTSTP)
    assert finish(proc) == 6
    assert proc.stdout.read() == "stopped\n"


@pytest.mark.parametrize("limit", [[], ["--output-limit", "1k"]], ids=["plain", "output-limit"])
def test_a_reader_that_leaves_ends_the_task_with_sigpipe(state_root: Path, limit: list[str]) -> None:
    """`lxrun exec [--output-limit 1k] -- yes | head -2`: 141, as the shell pipeline without lxrun."""
    proc = start(state_root, *limit, "--", "yes")
    assert proc.stdout is not None
    assert [proc.stdout.readline(), proc.stdout.readline()] == ["y\n", "y\n"]
    proc.stdout.close()  # head has read its two lines and left
    assert finish(proc) == 128 + signal.SIGPIPE
