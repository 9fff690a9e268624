"""`lxrun backends` and `lxrun exec --backend NAME` as users call them."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from lxrun.runtime import Runtime
from tests.conftest import require

from .conftest import LXRUN, lxrun_cli

DELEGATING = ["lxc", "docker"]


def usable(name: str, root: Path) -> None:
    probe = Runtime(root).backend(name).probe()
    require(probe.available, f"backend {name} can't run here: {probe.reason}")


def test_backends_lists_each_with_its_state(state_root: Path) -> None:
    done = lxrun_cli(state_root, "backends")
    assert done.returncode == 0
    rows = [line.split(None, 2) for line in done.stdout.splitlines()]
    assert [row[0] for row in rows] == ["native", "lxc", "docker"]
    for name, state, reason in rows:
        probe = Runtime(state_root).backend(name).probe()
        assert state == ("available" if probe.available else "unavailable")
        assert reason == probe.reason


def test_an_unknown_backend_is_one_line_and_125(state_root: Path) -> None:
    done = lxrun_cli(state_root, "exec", "--backend", "podman", "--stack", "busybox", "--", "true")
    assert (done.returncode, done.stdout) == (125, "")
    assert done.stderr == "lxrun: backend podman: unknown (use one of native, lxc, docker)\n"


@pytest.mark.parametrize("backend", DELEGATING)
def test_streams_and_exit_code(state_root: Path, backend: str) -> None:
    usable(backend, state_root)
    done = lxrun_cli(
        state_root, "exec", "--backend", backend, "--stack", "busybox", "--", "sh", "-c", "echo o; echo e >&2; exit 5"
    )
    assert (done.stdout, done.stderr, done.returncode) == ("o\n", "e\n", 5)


@pytest.mark.parametrize("backend", DELEGATING)
def test_command_not_found_is_127(state_root: Path, backend: str) -> None:
    usable(backend, state_root)
    done = lxrun_cli(state_root, "exec", "--backend", backend, "--stack", "busybox", "--", "no-such-tool")
    assert done.returncode == 127
    assert done.stderr.splitlines()[-1].startswith("lxrun: exec no-such-tool: command not found in the sandbox")


@pytest.mark.parametrize("backend", DELEGATING)
def test_interactive_stdin(state_root: Path, backend: str) -> None:
    usable(backend, state_root)
    done = lxrun_cli(
        state_root, "exec", "-i", "--backend", backend, "--stack", "busybox", "--", "wc", "-c", input="hello"
    )
    assert (done.stdout.strip(), done.returncode) == ("5", 0)


@pytest.mark.parametrize("backend", DELEGATING)
def test_sigterm_to_lxrun_reaches_the_task(state_root: Path, backend: str) -> None:
    usable(backend, state_root)
    script = "trap 'echo caught; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    proc = subprocess.Popen(
        [
            LXRUN,
            "exec",
            "--root",
            str(state_root),
            "--backend",
            backend,
            "--stack",
            "busybox",
            "--",
            "sh",
            "-c",
            script,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"  # the trap is set
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7
    assert proc.stdout.read() == "caught\n"
