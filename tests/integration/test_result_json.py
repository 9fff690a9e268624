"""`--result-json FILE`: a bad destination fails before the task runs; a failed run leaves no result file,
not even an earlier run's; the file appears whole or not at all (temp file + rename), never through a link."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .conftest import LXRUN, lxrun_cli


def exec_(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return lxrun_cli(root, "exec", "--stack", "busybox", *args)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 125, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lxrun: "), done.stderr
    return lines[0]


def test_a_missing_directory_fails_before_the_task_runs(state_root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    marker.parent.chmod(0o777)
    done = exec_(
        state_root, "-v", f"{tmp_path}:/out", "--userns", "host",
        "--result-json", str(tmp_path / "no-such-dir" / "r.json"), "--", "touch", "/out/ran",
    )  # fmt: skip
    assert "--result-json" in one_line(done) and "No such file or directory" in done.stderr
    assert not marker.exists(), "the task ran although its result could not be written"


def test_a_failed_run_removes_an_earlier_result(state_root: Path, tmp_path: Path) -> None:
    result = tmp_path / "r.json"
    assert exec_(state_root, "--result-json", str(result), "--", "true").returncode == 0
    assert json.loads(result.read_text())["exit_code"] == 0
    done = exec_(state_root, "--result-json", str(result), "--memory", "1k", "--", "true")
    assert "--memory" in one_line(done)
    assert not result.exists(), "a reader would take the earlier run's result for this one's"
    assert list(tmp_path.iterdir()) == []  # no temp file either


def test_a_later_run_replaces_the_result_whole(state_root: Path, tmp_path: Path) -> None:
    result = tmp_path / "r.json"
    result.write_text("x" * 10000)  # longer than the new result: no tail of it may survive
    assert exec_(state_root, "--result-json", str(result), "--", "sh", "-c", "exit 3").returncode == 3
    assert json.loads(result.read_text())["exit_code"] == 3
    assert [path.name for path in tmp_path.iterdir()] == ["r.json"]


def test_a_full_disk_leaves_no_empty_result(state_root: Path) -> None:
    """The result's filesystem is full: lxrun says so and leaves neither the file nor its temp file."""
    script = (
        "mount -t tmpfs -o size=64k none /mnt && dd if=/dev/zero of=/mnt/fill bs=4k 2>/dev/null;"
        f" LXRUN_ROOT={state_root} {LXRUN} exec --stack busybox --result-json /mnt/r.json -- true;"
        " echo rc=$?; ls -A /mnt"
    )
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True, text=True
    )
    assert done.stdout.splitlines() == ["rc=125", "fill"], done
    assert done.stderr.startswith("lxrun: --result-json /mnt/r.json: No space left on device"), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_bad_destinations_are_refused(state_root: Path, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    for destination, reason in [
        ("", "needs a file name"),
        (str(tmp_path) + "/", "needs a file name"),
        (str(tmp_path / "dir"), "is not a regular file"),
    ]:
        assert reason in one_line(exec_(state_root, "--result-json", destination, "--", "true")), destination
