"""A task can't make lxrun (root) write a host file through `--result-json`: one task plants a symlink
in its read-write volume where the next run's result goes; lxrun must refuse it and leave the host
file as it was."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import lxrun_cli


@pytest.fixture
def host_file() -> Iterator[Path]:
    """A file outside every volume, owned by root: what the planted link points at."""
    with tempfile.TemporaryDirectory(prefix="lxrun-victim-") as directory:
        victim = Path(directory) / "victim"
        victim.write_text("host data\n")
        yield victim


def test_result_json_is_never_written_through_a_planted_link(
    state_root: Path, volume_dir: Path, host_file: Path
) -> None:
    planted = lxrun_cli(
        state_root, "exec", "--stack", "busybox", "--userns", "host", "-v", f"{volume_dir}:/vol",
        "--", "ln", "-s", str(host_file), "/vol/result.json",
    )  # fmt: skip
    assert planted.returncode == 0, planted.stderr
    assert (volume_dir / "result.json").is_symlink()
    done = lxrun_cli(
        state_root, "exec", "--stack", "busybox", "--result-json", str(volume_dir / "result.json"), "--", "true"
    )
    assert done.returncode == 125 and done.stderr.startswith("lxrun: --result-json "), done.stderr
    assert "symbolic link" in done.stderr
    assert host_file.read_text() == "host data\n"
    assert (volume_dir / "result.json").is_symlink(), "lxrun removed the link: nothing of it may be touched"
