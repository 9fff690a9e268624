"""Real builds from the shipped specs: the debian-bookworm base with mmdebstrap, python3.11 and ruby3.1 on
it with apt in the build sandbox, tasks running `python3 -c` and `ruby -e`. Needs mmdebstrap and the
Debian mirror; takes a few minutes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lxrun.layout import Layout
from lxrun.store.specs import DEBIAN_MIRROR
from lxrun.store.stacks import StackStore

from ..conftest import require
from .conftest import LXRUN, lxrun_cli
from .stacktools import specs_env, store_listing, write_stack

MIRROR_HOST = DEBIAN_MIRROR.split("/")[2]


def mirror_reachable() -> bool:
    try:
        with socket.create_connection((MIRROR_HOST, 80), timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def debian_ready(native_ready: None) -> None:
    require(shutil.which("mmdebstrap") is not None, "mmdebstrap is not installed (apt-get install mmdebstrap)")
    require(mirror_reachable(), f"the Debian mirror {MIRROR_HOST} is not reachable")


@pytest.fixture(scope="module")
def state_root(tmp_path_factory: pytest.TempPathFactory, debian_ready: None) -> Iterator[Path]:
    """One state root for the module: the base is built once and the stacks on it."""
    root = tmp_path_factory.mktemp("lxrun-debian")
    yield root
    assert list((root / "tmp").iterdir()) == [], "a build left something in tmp/"


@pytest.fixture(autouse=True)
def shipped_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LXRUN_SPECS", raising=False)


def cli_ok(root: Path, *args: str) -> str:
    done = lxrun_cli(root, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_debian_bookworm_base(state_root: Path) -> None:
    out = cli_ok(state_root, "base", "build", "debian-bookworm")
    assert out.startswith("debian-bookworm@1 layers=")
    assert cli_ok(state_root, "base", "build", "debian-bookworm") == out  # unchanged: a no-op
    script = (
        "cat /etc/debian_version; ls /var/lib/apt/lists /var/cache/apt/archives; wc -c < /etc/resolv.conf; echo $LANG"
    )
    shown = cli_ok(state_root, "exec", "--stack", "debian-bookworm", "--", "sh", "-c", script).split()
    assert shown[0].startswith("12.")
    assert [entry for entry in shown[1:-2] if "_" in entry or entry.endswith(".deb")] == [], "apt lists or debs kept"
    assert shown[-2:] == ["0", "C.UTF-8"]


def test_python311_on_bookworm(state_root: Path) -> None:
    out = cli_ok(state_root, "stack", "build", "python3.11")
    assert out.startswith("python3.11@1 built in ")
    done = cli_ok(
        state_root, "exec", "--stack", "python3.11", "--", "python3", "-c", "import sys; print(sys.version_info[:2])"
    )
    assert done == "(3, 11)\n"
    # Names a program asks for resolve through the task's own /etc/hosts (Debian's minbase has none).
    names = "import socket as s; print(s.gethostbyname('localhost'), s.gethostbyname(s.gethostname()))"
    resolved = cli_ok(state_root, "exec", "--stack", "python3.11", "--name", "py", "--", "python3", "-c", names)
    assert resolved == "127.0.0.1 127.0.1.1\n"
    layer = state_root / "layers" / StackStore(Layout(state_root)).version("python3.11", "1").layers[-1]
    kept = [
        *(layer / "rootfs/var/lib/apt/lists").glob("*_*"),
        *(layer / "rootfs/var/cache/apt/archives").glob("*.deb"),
        *(layer / "rootfs/var/log/apt").glob("*"),
        *(layer / "rootfs/var/log").glob("dpkg.log"),
    ]
    assert kept == [], "apt lists, caches or logs were kept in the diff"
    assert cli_ok(state_root, "stack", "build", "python3.11").startswith("python3.11@1 unchanged")


def test_ruby31_on_bookworm(state_root: Path) -> None:
    cli_ok(state_root, "stack", "build", "ruby3.1")
    assert cli_ok(state_root, "exec", "--stack", "ruby3.1", "--", "ruby", "-e", "puts RUBY_VERSION[0, 4]") == "3.1.\n"
    listed = cli_ok(state_root, "stack", "ls")
    assert [line.split()[:4] for line in listed.splitlines()[1:]] == [
        ["debian-bookworm", "1", "*", "1"],
        ["python3.11", "1", "*", "2"],
        ["ruby3.1", "1", "*", "2"],
    ]


def test_an_unknown_package_is_a_spec_error_that_writes_nothing(state_root: Path, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    path = write_stack(specs, "nopkg", parent="debian-bookworm", packages=["python3", "lxrun-no-such-package"])
    listing = store_listing(state_root)
    done = lxrun_cli(state_root, "stack", "build", "nopkg", env_extra={"LXRUN_SPECS": specs_env(specs)})
    assert (done.returncode, done.stdout) == (125, "")
    last = done.stderr.splitlines()[-1]
    assert last == (
        f"lxrun: spec {path}: `packages` names what apt cannot find: lxrun-no-such-package"
        " (check the names against debian-bookworm's apt sources, e.g. with apt-cache search)"
    )
    assert store_listing(state_root) == listing


def test_an_interrupted_base_build_leaves_nothing(tmp_path: Path, debian_ready: None) -> None:
    root = tmp_path / "root"
    env = {**os.environ, "LXRUN_ROOT": str(root)}
    proc = subprocess.Popen([LXRUN, "base", "build", "debian-trixie"], env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("I: extracting archives"):  # mmdebstrap is writing the tree
            break
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert proc.stderr.read().splitlines()[-1] == "lxrun: base build interrupted: nothing of it was kept"
    assert list((root / "tmp").iterdir()) == []
    assert list((root / "layers").iterdir()) == []
    assert not (root / "stacks" / "debian-trixie").exists()
    assert [child.pid for child in children if child.is_running()] == [], "mmdebstrap left processes"
    assert str(root) not in Path("/proc/self/mountinfo").read_text()
