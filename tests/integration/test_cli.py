"""`lxrun exec` as users call it: exit codes as docker run, streams, flags, signals, one-line errors."""

from __future__ import annotations

import gc
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import LXRUN, lxrun_cli


def exec_(root: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return lxrun_cli(root, "exec", "--stack", "busybox", *args, **kwargs)  # type: ignore[arg-type]


def test_streams_and_exit_code(state_root: Path) -> None:
    done = exec_(state_root, "--", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (done.stdout, done.stderr, done.returncode) == ("out\n", "err\n", 5)


@pytest.mark.parametrize(
    ("command", "code"),
    [(["sh", "-c", "kill -TERM $$"], 143), (["no-such-tool"], 127), (["/etc/passwd"], 126), (["true"], 0)],
)
def test_exit_codes_follow_docker(state_root: Path, command: list[str], code: int) -> None:
    assert exec_(state_root, "--", *command).returncode == code


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", "nope", "--", "true"], "lxrun: stack nope: not found"),
        (["--stack", "busybox"], "lxrun: command: no command given"),
        (["--stack", "busybox", "--bogus", "--", "true"], "lxrun exec: unrecognized arguments: --bogus"),
        (["--", "true"], "lxrun exec: the following arguments are required: --stack"),
        (["--stack", "busybox", "-e", "LXRUN_TEST_UNSET", "--", "true"], "-e LXRUN_TEST_UNSET: is not set on the host"),
        (
            ["--stack", "busybox", "-v", "/nonexistent/x:/x", "--", "true"],
            "volume /nonexistent/x: source does not exist",
        ),
        (["--stack", "busybox", "-v", "/tmp:relative", "--", "true"], "volume relative: must be an absolute path"),
        (["--stack", "busybox", "-v", "/tmp:/a/../b", "--", "true"], "must not contain '..'"),
        (["--stack", "busybox", "-w", "/etc/passwd", "--", "true"], "workdir /etc/passwd: Not a directory"),
        (["--stack", "busybox", "-w", "rel", "--", "true"], "workdir rel: must be an absolute path"),
    ],
)
def test_bad_input_is_one_line_and_125(state_root: Path, args: list[str], message: str) -> None:
    done = lxrun_cli(state_root, "exec", *args)
    assert done.returncode == 125
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr


def test_env_flags(state_root: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("A=file\nB=file\n")
    done = exec_(
        state_root,
        "--env-file",
        str(env_file),
        "-e",
        "B=flag",
        "-e",
        "FROM_HOST",
        "--",
        "sh",
        "-c",
        "echo $A $B $FROM_HOST",
        env_extra={"FROM_HOST": "hosty"},
    )
    assert done.stdout == "file flag hosty\n"


def test_workdir_name_hostname_volume(state_root: Path, volume_dir: Path) -> None:
    (volume_dir / "f").write_text("vol")
    done = exec_(
        state_root,
        "-w",
        "/srv",
        "--name",
        "n1",
        "--hostname",
        "h1",
        "-v",
        f"{volume_dir}:/data:ro",
        "--",
        "sh",
        "-c",
        "pwd; hostname; cat /data/f; touch /data/g || echo ro",
    )
    assert done.stdout == "/srv\nh1\nvolro\n"


def test_interactive_stdin(state_root: Path) -> None:
    assert exec_(state_root, "-i", "--", "cat", input="typed\n").stdout == "typed\n"
    assert exec_(state_root, "--", "cat", input="ignored\n").stdout == ""


def test_result_json(state_root: Path, tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    done = exec_(state_root, "--result-json", str(result_file), "--name", "r1", "--", "sh", "-c", "exit 4")
    assert done.returncode == 4
    result = json.loads(result_file.read_text())
    assert result["exit_code"] == 4 and result["signal"] is None and result["name"] == "r1"
    assert len(result["task_id"]) == 12 and result["wall_time"] > 0


def test_keep_prints_the_upper_dir(state_root: Path) -> None:
    done = exec_(state_root, "--keep", "--", "sh", "-c", "echo k > /kept")
    kept = state_root / "kept"
    try:
        path = Path(done.stderr.strip().rsplit(" ", 1)[-1])
        assert path.parent.parent == kept, done.stderr
        assert (path / "kept").read_text() == "k\n"
    finally:
        # What to remove comes from the state root, never from the output: a garbled line must not
        # name a directory outside it (a relative path once made this rmtree the working directory).
        for task_dir in kept.iterdir():
            shutil.rmtree(task_dir)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_to_lxrun_reach_the_task(state_root: Path, sig: signal.Signals) -> None:
    script = f"trap 'echo caught; exit 7' {sig.name[3:]}; echo ready; while :; do sleep 0.05; done"
    proc = subprocess.Popen(
        [LXRUN, "exec", "--root", str(state_root), "--stack", "busybox", "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.1)
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 7
    assert proc.stdout.read() == "caught\n"


def test_unknown_verb(state_root: Path) -> None:
    done = lxrun_cli(state_root, "frobnicate")
    assert (done.returncode, done.stderr) == (125, "lxrun: unknown command 'frobnicate' (see `lxrun --help`)\n")


def test_help_lists_the_verbs(state_root: Path) -> None:
    done = lxrun_cli(state_root, "--help")
    assert done.returncode == 0 and "exec" in done.stdout and "base" in done.stdout
    done = lxrun_cli(state_root, "exec", "--help")
    assert done.returncode == 0 and "--stack" in done.stdout and "--volume" in done.stdout


def test_base_build_is_a_no_op_when_unchanged(state_root: Path) -> None:
    first = lxrun_cli(state_root, "base", "build", "busybox")
    second = lxrun_cli(state_root, "base", "build", "busybox")
    assert first.returncode == 0 and first.stdout.startswith("busybox@1 layers=")
    assert second.stdout == first.stdout
    assert len(list((state_root / "layers").iterdir())) >= 1
    assert list((state_root / "tmp").iterdir()) == []


def test_base_build_of_an_unknown_base(state_root: Path) -> None:
    done = lxrun_cli(state_root, "base", "build", "nope")
    assert done.returncode == 125
    assert done.stderr.startswith("lxrun: spec nope: no rootfs/nope.toml (searched ")


@pytest.mark.parametrize(
    "argv",
    [["exec", "--stack", "busybox", "--", "sh", "-c", "exit 3"], ["ps"]],
    ids=["exec", "ps"],
)
def test_the_collector_is_back_on_once_the_start_is_over(state_root: Path, argv: list[str]) -> None:
    """bin/lxrun starts with the garbage collector off: a task that runs for hours, or another verb's work,
    must not go on without it."""
    from lxrun.cli import run_cli

    gc.disable()
    try:
        code = run_cli([argv[0], "--root", str(state_root), *argv[1:]])
        assert (code, gc.isenabled()) == (3 if argv[0] == "exec" else 0, True)
    finally:
        gc.unfreeze()
        gc.enable()
