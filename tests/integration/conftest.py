"""Integration tests: real namespaces, overlays and mounts. Every test checks nothing was left behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from lxrun import Result, TaskSpec, run
from lxrun.layout import Layout
from lxrun.store.layers import LayerStore
from lxrun.store.stacks import StackStore, StackVersion

LXRUN = str(Path(sys.executable).with_name("lxrun"))


def host_mounts() -> list[str]:
    """The host's mount table without per-mount ids (which a new mount elsewhere can't change anyway)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return sorted(" ".join(line.split()[3:]) for line in lines)


@pytest.fixture(autouse=True)
def leaves_nothing_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    if "state_root" not in request.fixturenames:
        yield
        return
    root: Path = request.getfixturevalue("state_root")
    mounts_before = host_mounts()
    yield
    assert host_mounts() == mounts_before, "the host's mount table changed"
    assert list((root / "run").iterdir()) == [], "a task record was left in run/"
    assert list((root / "scratch").iterdir()) == [], "something was left in scratch/"
    assert psutil.Process().children(recursive=True) == [], "a process was left running"


@pytest.fixture
def volume_dir() -> Iterator[Path]:
    """A host directory tasks can reach: pytest's tmp_path is private to root (0700), and a task's root
    in its user namespace is an unprivileged host uid where a volume opts out of idmapping. On disk
    (/var/tmp): volumes are idmapped, and tmpfs takes that only from Linux 6.3 (the v2 guest has 6.1)."""
    path = Path(tempfile.mkdtemp(prefix="lxrun-volume-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def add_stack(root: Path, name: str, files: dict[str, str | Path | tuple[bytes, int]], parent: str = "busybox") -> None:
    """A stack of `parent`'s layers plus one made of `files`: text, a Path (a symlink to it), or
    (content, mode) for a file with that mode."""
    layout = Layout(root)
    layers, stacks = LayerStore(layout), StackStore(layout)
    digest = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()
    if not layers.exists(digest):
        with layers.building() as work:
            for relative, content in files.items():
                path = Path(work) / "rootfs" / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Path):
                    path.symlink_to(content)
                elif isinstance(content, tuple):
                    path.write_bytes(content[0])
                    path.chmod(content[1])
                else:
                    path.write_text(content)
            layers.commit(work, digest, parent=None, kind="diff", source="test")
    base = stacks.version(parent, stacks.current_version(parent))
    stacks.add_version(StackVersion(name, digest[:8], (*base.layers, digest), base.env))
    stacks.promote(name, digest[:8])


def run_task(root: Path, *argv: str, **kwargs: Any) -> Result:
    kwargs.setdefault("stack", "busybox")
    return run(TaskSpec(argv=argv, **kwargs), root=root)


def sh(root: Path, script: str, **kwargs: Any) -> Result:
    return run_task(root, "sh", "-c", script, **kwargs)


def lxrun_cli(
    root: Path, *args: str, env_extra: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LXRUN_ROOT": str(root), **(env_extra or {})}
    kwargs.setdefault("capture_output", True)
    return subprocess.run([LXRUN, *args], env=env, text=True, check=False, **kwargs)


HANG_GUARD = 60  # seconds; only a hang ever takes that long


def finish(proc: subprocess.Popen[Any]) -> int:
    """An `lxrun exec` started by a test, to its end; one that hangs is ended (and releases its task)."""
    try:
        return proc.wait(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.terminate()  # forwarded: the task ends, lxrun releases it
            proc.send_signal(signal.SIGCONT)  # (a stopped lxrun must first go on to see it)
            proc.wait()
