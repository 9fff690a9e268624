"""Bad input anywhere in the CLI gives one line starting `lxrun: ` and exit 125: every `lxrun exec` option
(as exec_options declares them) and every other verb's arguments, each given hostile values (huge,
negative, NaN, inf, non-UTF-8 bytes, empty, very long). Never a traceback, and nothing is left in the
state root or the working directory. A value an option rightly accepts is listed, and must then work."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxrun.cli.exec_options import FLAG, options
from tests.conftest import require

from .conftest import LXRUN

HOSTILE = {
    "huge": b"99999999999999999999999",
    "digits": b"9" * 5000,
    "negative": b"-2",
    "nan": b"nan",
    "inf": b"inf",
    "non-utf8": b"\xff\xfe",
    "empty": b"",
    "long": b"x" * 100000,
}

# (option, value) pairs that are valid input: the task runs and exits 0 (and they create nothing).
ACCEPTED = {
    ("--name", "huge"), ("--name", "nan"), ("--name", "inf"),
    ("--hostname", "huge"), ("--hostname", "nan"), ("--hostname", "inf"),
}  # fmt: skip
# --entrypoint is a command (docker's): '' means none (the task runs `true`); any other value is a program
# name the sandbox looks up, and one that isn't there is docker's 127, in one line.
ENTRYPOINT = "--entrypoint"
# -1 lifts a bound the host's config sets by default (lxrun.config): valid for these, hostile for the others.
UNBOUNDED = {"--memory", "--pids-limit", "--timeout", "--disk"}
# --result-json takes any file name relative to the working directory: checked apart below.
RELATIVE_FILE = {"huge", "negative", "nan", "inf", "non-utf8"}

VALUED = [option for option in options() if option.kind != FLAG]


def snapshot(*roots: Path) -> list[str]:
    """Everything under the roots but the layers' own trees (read-only, and large)."""
    found = []
    for root in roots:
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not directory.endswith("/layers")]
            found += [f"{directory}/{name}" for name in dirs + files]
    return sorted(found)


@pytest.fixture(scope="module", autouse=True)
def ran_once(state_root: Path) -> None:
    """A state root makes its shared parts (the /dev template, caches) on its first task: not a leftover."""
    done = subprocess.run([LXRUN, "exec", "--root", str(state_root), "--stack", "busybox", "--", "true"], check=False)
    assert done.returncode == 0


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cwd"
    directory.mkdir()
    yield directory


def lxrun(root: Path, cwd: Path, *argv: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LXRUN_ROOT": str(root)}
    return subprocess.run([LXRUN.encode(), *argv], env=env, cwd=cwd, capture_output=True, check=False)


def assert_one_line(done: subprocess.CompletedProcess[bytes]) -> None:
    text = done.stderr.decode(errors="replace")
    lines = text.splitlines()
    assert done.returncode == 125, f"exit {done.returncode}: {text[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("lxrun"), text[-2000:]
    assert "Traceback" not in text


@pytest.mark.parametrize("value", HOSTILE, ids=str)
@pytest.mark.parametrize("flag", [option.flags[-1] for option in VALUED], ids=str)
def test_every_exec_option(state_root: Path, workdir: Path, flag: str, value: str) -> None:
    before = snapshot(state_root, workdir)
    hostile = HOSTILE[value]
    stack = [b"--stack", b"busybox"] if flag != "--stack" else []
    done = lxrun(state_root, workdir, b"exec", *stack, flag.encode(), hostile, b"--", b"true")
    if flag == ENTRYPOINT and value != "empty":
        lines = done.stderr.decode(errors="replace").splitlines()
        assert done.returncode == 127 and len(lines) == 1 and "command not found" in lines[0], lines[-3:]
    elif (
        (flag, value) in ACCEPTED
        or (flag, value) == (ENTRYPOINT, "empty")
        or (flag == "--result-json" and value in RELATIVE_FILE)
    ):
        assert done.returncode == 0, done.stderr
        if flag == "--result-json":
            written = workdir / os.fsdecode(hostile)
            assert written.is_file()
            written.unlink()
    else:
        assert_one_line(done)
    assert snapshot(state_root, workdir) == before


@pytest.mark.parametrize("flag", sorted(UNBOUNDED))
def test_minus_one_lifts_a_default_bound(state_root: Path, workdir: Path, flag: str) -> None:
    before = snapshot(state_root, workdir)
    done = lxrun(state_root, workdir, b"exec", b"--stack", b"busybox", flag.encode(), b"-1", b"--", b"true")
    assert done.returncode == 0, done.stderr
    assert snapshot(state_root, workdir) == before


VERBS = [
    [b"X"],
    [b"inspect", b"X"],
    [b"kill", b"X"],
    [b"kill", b"sometask", b"--signal", b"X"],
    [b"stack", b"build", b"X"],
    [b"stack", b"inspect", b"X"],
    [b"stack", b"promote", b"X"],
    [b"stack", b"rollback", b"X"],
    [b"stack", b"rm", b"X"],
    [b"base", b"build", b"X"],
    [b"kept", b"rm", b"X"],
    [b"ps", b"--X"],
    [b"gc", b"--dry-run", b"X"],
]


@pytest.mark.parametrize("value", HOSTILE, ids=str)
@pytest.mark.parametrize("verb", VERBS, ids=lambda verb: b" ".join(verb).decode())
def test_every_other_verb(state_root: Path, workdir: Path, verb: list[bytes], value: str) -> None:
    before = snapshot(state_root, workdir)
    argv = [HOSTILE[value] if arg == b"X" else arg.replace(b"X", HOSTILE[value]) for arg in verb]
    assert_one_line(lxrun(state_root, workdir, *argv))
    assert snapshot(state_root, workdir) == before


@pytest.mark.parametrize("value", ["empty", "long", "digits"])
@pytest.mark.parametrize("verb", [b"ps", b"df", b"gc", b"backends", b"kept", b"stack"])
def test_every_verbs_root(state_root: Path, workdir: Path, verb: bytes, value: str) -> None:
    """--root: empty would mean the working directory; too long a path can't be one."""
    action = [b"ls"] if verb in (b"kept", b"stack") else []
    assert_one_line(lxrun(state_root, workdir, verb, *action, b"--root", HOSTILE[value]))
    assert list(workdir.iterdir()) == []


def test_a_nonexistent_root_creates_nothing(state_root: Path, workdir: Path) -> None:
    for verb in ([b"ps"], [b"df"], [b"stack", b"ls"], [b"kept", b"ls"]):
        assert lxrun(state_root, workdir, *verb, b"--root", b"nan").returncode == 0
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"A=\xff\n", "line 1 is not UTF-8"),
        (b"A=x\0y\n", "value contains a NUL byte"),
        (b"export FOO=bar\n", "variable name contains whitespace"),
        (b"B=1\nKEY = v\n", "variable name contains whitespace"),
        (b"=v\n", "needs KEY=VALUE"),
        (b"x" * (2 << 20), "is larger than 1 MiB"),
    ],
)
def test_hostile_env_files(state_root: Path, workdir: Path, content: bytes, reason: str) -> None:
    (workdir / "env").write_bytes(content)
    done = lxrun(state_root, workdir, b"exec", b"--stack", b"busybox", b"--env-file", b"env", b"--", b"true")
    assert_one_line(done)
    assert reason in done.stderr.decode()


def test_an_endless_env_file(state_root: Path, workdir: Path) -> None:
    done = lxrun(state_root, workdir, b"exec", b"--stack", b"busybox", b"--env-file", b"/dev/zero", b"--", b"true")
    assert_one_line(done)


def test_a_spec_that_is_not_utf8(state_root: Path, workdir: Path) -> None:
    (workdir / "bad.toml").write_bytes(b'name = "x\xff"\n')
    for verb in (b"stack", b"base"):
        done = lxrun(state_root, workdir, verb, b"build", b"./bad.toml")
        assert_one_line(done)
        assert b"is not UTF-8" in done.stderr


def test_as_non_root_one_line_says_lxrun_needs_root(state_root: Path, workdir: Path) -> None:
    runuser = shutil.which("runuser")
    require(runuser is not None, "runuser (util-linux) is needed to run lxrun as another user")
    for verb in (["ps"], ["exec", "--stack", "busybox", "--", "true"], ["stack", "ls"]):
        done = subprocess.run(
            [runuser, "-u", "nobody", "--", LXRUN, *verb],
            env={**os.environ, "LXRUN_ROOT": str(state_root)},
            cwd="/",
            capture_output=True,
        )
        assert_one_line(done)
        assert b"needs root" in done.stderr


@pytest.mark.parametrize("verb", [["stack", "inspect", "busybox"], ["backends"], ["stack", "ls"]])
def test_a_reader_that_goes_away(state_root: Path, verb: list[str]) -> None:
    """`lxrun ... | head`: stdout is a pipe nobody reads; one line says so, exit 125."""
    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "LXRUN_ROOT": str(state_root)}
    done = subprocess.run([LXRUN, *verb], env=env, stdout=write, stderr=subprocess.PIPE, check=False)
    os.close(write)
    assert_one_line(done)
    assert b"Broken pipe" in done.stderr


def test_exec_with_stdout_and_stderr_closed(state_root: Path) -> None:
    env = {**os.environ, "LXRUN_ROOT": str(state_root)}
    command = f"{LXRUN} exec --stack busybox -- sh -c 'echo out; echo err >&2; exit 3' >&- 2>&-"
    assert subprocess.run(["sh", "-c", command], env=env, check=False).returncode == 3


def test_version() -> None:
    done = subprocess.run([LXRUN, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("lxrun ") and done.stderr == ""
