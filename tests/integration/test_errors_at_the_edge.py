"""Every public entry point, driven into an OSError (a state root that is a file: ENOTDIR on every path
below it), answers with an lxrun error: one line and exit 125 from the CLI, LxrunError with the errno
and the OSError chained from the Python API. Never a traceback, never a raw OSError."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lxrun import LxrunError, Runtime, TaskSpec
from lxrun.cli.usage import EXIT_LXRUN_FAILED

LXRUN = str(Path(sys.executable).with_name("lxrun"))

VERBS = [
    ["exec", "--stack", "busybox", "--root", "ROOT", "--", "true"],
    ["ps"],
    ["inspect", "sometask"],
    ["kill", "sometask"],
    ["gc"],
    ["gc", "--layers"],
    ["df"],
    ["stack", "ls"],
    ["stack", "inspect", "busybox"],
    ["stack", "promote", "busybox@1"],
    ["stack", "rollback", "busybox"],
    ["stack", "rm", "busybox@1"],
    ["base", "build", "busybox"],
]


@pytest.fixture
def file_root(tmp_path: Path) -> Path:
    root = tmp_path / "root-is-a-file"
    root.write_text("not a directory\n")
    return root


@pytest.mark.parametrize("verb", VERBS, ids=lambda verb: " ".join(verb[:2]))
def test_the_cli_says_one_line_and_exits_125(verb: list[str], file_root: Path) -> None:
    argv = [str(file_root) if arg == "ROOT" else arg for arg in verb]
    if "ROOT" not in verb:
        argv += ["--root", str(file_root)]
    done = subprocess.run([LXRUN, *argv], capture_output=True, text=True)
    assert done.returncode == EXIT_LXRUN_FAILED, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lxrun: ") and "Traceback" not in done.stderr, done.stderr
    assert str(file_root) in lines[0] and "Not a directory" in lines[0]
    assert file_root.read_text() == "not a directory\n"  # nothing written through it


CALLS: dict[str, Callable[[Runtime], object]] = {
    "run": lambda rt: rt.run(TaskSpec(stack="busybox", argv=["true"])),
    "ps": lambda rt: rt.ps(),
    "inspect": lambda rt: rt.inspect("sometask"),
    "kill": lambda rt: rt.kill("sometask", 9),
    "gc": lambda rt: rt.gc(),
    "gc layers": lambda rt: rt.gc(layers=True),
    "stack ls": lambda rt: rt.stack_versions(),
    "stack inspect": lambda rt: rt.inspect_stack("busybox"),
    "promote": lambda rt: rt.promote("busybox@1"),
    "rollback": lambda rt: rt.rollback("busybox"),
    "stack rm": lambda rt: rt.remove_stack("busybox@1"),
    "df": lambda rt: rt.df(),
    "base build": lambda rt: rt.build_base("busybox", log_fd=os.open(os.devnull, os.O_WRONLY)),
}


@pytest.mark.parametrize("name", CALLS)
def test_the_api_raises_lxrun_errors_with_the_cause(name: str, file_root: Path) -> None:
    with pytest.raises(LxrunError) as info:
        CALLS[name](Runtime(file_root))
    error = info.value
    assert error.exit_code == EXIT_LXRUN_FAILED and "\n" not in str(error)
    assert error.errno == errno.ENOTDIR and isinstance(error.__cause__, OSError), repr(error)
