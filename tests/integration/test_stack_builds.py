"""`lxrun stack build` on busybox-based stacks (no network): run steps in the build sandbox, the frozen
diff layer with its whiteouts and opaque dirs, no-op rebuilds, failures and interrupts that leave
nothing, and bad specs refused in one line before anything is written."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lxrun.errors import SpecError, StoreError
from lxrun.layout import Layout
from lxrun.store.bases import build_base
from lxrun.store.builds import Built, build_stack
from lxrun.store.layers import LayerStore
from lxrun.store.specs import find_spec, load_base_spec
from lxrun.store.stacks import StackStore

from .conftest import LXRUN, lxrun_cli, sh
from .stacktools import specs_env, store_listing, write_stack


@pytest.fixture
def state_root(tmp_path_factory: pytest.TempPathFactory, native_ready: None) -> Iterator[Path]:
    """A fresh state root per test, with the busybox base: what a test counts in it is its own."""
    root = tmp_path_factory.mktemp("lxrun-stacks")
    build_base(load_base_spec(find_spec("rootfs", "busybox")), Layout(root))
    yield root
    assert list((root / "tmp").iterdir()) == [], "a build left something in tmp/"


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "specs"
    monkeypatch.setenv("LXRUN_SPECS", specs_env(directory))
    return directory


def build(root: Path, name: str, log: list[str] | None = None, promote: bool = True) -> Built:
    """Build in-process; step lines go to `log`, the build's own output nowhere."""
    lines = log if log is not None else []
    with open(os.devnull, "w") as devnull:
        return build_stack(name, Layout(root), log_fd=devnull.fileno(), report=lines.append, promote=promote)


def test_run_steps_become_a_diff_layer_tasks_run_on(state_root: Path, specs: Path) -> None:
    write_stack(
        specs,
        "greeter",
        run=["mkdir -p /opt/greeter", "echo 'echo hello from $GREETING' > /opt/greeter/hi", "chmod +x /opt/greeter/hi"],
        env={"GREETING": "greeter", "PATH": "/opt/greeter:/usr/bin:/bin"},
        labels={"team": "qa"},
    )
    log: list[str] = []
    built = build(state_root, "greeter", log)
    assert built.built
    assert [line.split("]")[0] for line in log] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert log[0] == "[1/4] greeter@1: run: mkdir -p /opt/greeter"

    stack = built.version
    busybox = StackStore(Layout(state_root)).version("busybox", "1")
    assert stack.layers[:-1] == busybox.layers and len(stack.layers) == 2
    assert (stack.parent, dict(stack.labels)) == ("busybox@1", {"team": "qa"})
    info = LayerStore(Layout(state_root)).info(stack.layers[-1])
    assert (info.kind, info.parent) == ("diff", busybox.layers[0])
    diff = state_root / "layers" / stack.layers[-1] / "rootfs"
    assert sorted(str(path.relative_to(diff)) for path in diff.rglob("*")) == ["opt", "opt/greeter", "opt/greeter/hi"]

    result = sh(state_root, "hi; echo $PATH", stack="greeter")
    assert result.stdout == b"hello from greeter\n/opt/greeter:/usr/bin:/bin\n"


def test_rebuilding_an_unchanged_spec_is_a_no_op(state_root: Path, specs: Path) -> None:
    write_stack(specs, "same", run=["echo 1 > /one"])
    first = build(state_root, "same")
    listing = store_listing(state_root)
    log: list[str] = []
    second = build(state_root, "same", log)
    assert (first.built, second.built) == (True, False)
    assert second.version == first.version
    assert log == [f"same@1: up to date (layer {first.version.layers[-1][:12]})"]
    assert store_listing(state_root) == listing


def test_whiteouts_and_opaque_dirs_survive_the_freeze(state_root: Path, specs: Path) -> None:
    # A three-layer chain: busybox, a diff that deletes a base file, a diff that replaces a directory.
    write_stack(specs, "wo-one", run=["rm /etc/os-release", "mkdir -p /srv/a && echo 1 > /srv/a/one"])
    write_stack(specs, "wo-two", parent="wo-one", run=["rm -rf /srv/a && mkdir /srv/a && echo 2 > /srv/a/two"])
    stack = build(state_root, "wo-two").version  # builds wo-one first
    assert len(stack.layers) == 3
    one, two = (state_root / "layers" / digest / "rootfs" for digest in stack.layers[1:])

    whiteout = (one / "etc/os-release").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(two / "srv/a", "trusted.overlay.opaque") == b"y"

    result = sh(state_root, "ls /srv/a; cat /etc/os-release 2>&1; cat /etc/passwd | head -1", stack="wo-two")
    assert (
        result.stdout
        == b"two\ncat: can't open '/etc/os-release': No such file or directory\nroot:x:0:0:root:/root:/bin/sh\n"
    )
    assert sh(state_root, "ls /srv/a", stack="wo-one").stdout == b"one\n"


def test_the_build_sandbox_has_the_host_network_and_resolv_conf_read_only(state_root: Path, specs: Path) -> None:
    write_stack(
        specs,
        "netcheck",
        run=[
            "cat /etc/resolv.conf > /resolv.copy",
            "ls /sys/class/net > /interfaces",
            "hostname > /hostname.seen",
            "(echo x > /etc/resolv.conf) 2>/dev/null && echo writable > /resolv.writable || true",
        ],
    )
    stack = build(state_root, "netcheck").version
    diff = state_root / "layers" / stack.layers[-1] / "rootfs"
    assert (diff / "resolv.copy").read_text() == Path("/etc/resolv.conf").read_text()
    assert (diff / "interfaces").read_text().split() == sorted(os.listdir("/sys/class/net"))
    assert (diff / "hostname.seen").read_text() == "lxrun-build\n"
    assert not (diff / "resolv.writable").exists()
    assert not (diff / "etc").exists(), "the resolv.conf mount point leaked into the diff"
    # Tasks have no network: only lo.
    assert sh(state_root, "ls /sys/class/net", stack="netcheck").stdout == b"lo\n"


def test_a_failed_step_leaves_no_layer_and_no_version(state_root: Path, specs: Path) -> None:
    path = write_stack(specs, "broken", run=["echo partial > /partial", "exit 3", "echo never"])
    listing = store_listing(state_root)
    log: list[str] = []
    with pytest.raises(StoreError, match=r"step 2/4 \(run: exit 3\) failed with exit status 3") as raised:
        build(state_root, "broken", log)
    assert raised.value.path == str(path)
    assert log[-1] == "[2/4] broken@1: run: exit 3"
    assert store_listing(state_root) == listing


def test_the_build_cli_streams_a_step_counter_and_the_log(state_root: Path, specs: Path) -> None:
    write_stack(specs, "chatty", run=["echo to-stdout", "echo to-stderr >&2"])
    done = lxrun_cli(state_root, "stack", "build", "chatty")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "lxrun: [1/3] chatty@1: run: echo to-stdout",
        "to-stdout",
        "lxrun: [2/3] chatty@1: run: echo to-stderr >&2",
        "to-stderr",
        "lxrun: [3/3] chatty@1: remove apt lists, caches and logs",
    ]
    assert done.stdout.startswith("chatty@1 built in ")
    again = lxrun_cli(state_root, "stack", "build", "chatty")
    assert again.stdout.startswith("chatty@1 unchanged in ")


@pytest.mark.parametrize(
    ("sig", "group", "code"),
    [
        (signal.SIGTERM, False, 143),
        (signal.SIGINT, False, 130),
        (signal.SIGHUP, False, 129),
        (signal.SIGINT, True, 130),
    ],
    ids=["SIGTERM", "SIGINT", "SIGHUP", "Ctrl-C"],
)
def test_an_interrupted_build_leaves_nothing(
    state_root: Path, specs: Path, sig: signal.Signals, group: bool, code: int
) -> None:
    marker = f"sleep {4000 + sig + 100 * group}"  # a command line to look for among all processes afterwards
    write_stack(specs, "slow", run=["echo started", marker])
    listing = store_listing(state_root)
    env = {**os.environ, "LXRUN_ROOT": str(state_root)}
    # Ctrl-C signals the terminal's whole foreground process group: lxrun and the build's processes.
    proc = subprocess.Popen(
        [LXRUN, "stack", "build", "slow"], env=env, stderr=subprocess.PIPE, text=True, start_new_session=group
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line == "started\n":
            break
    time.sleep(0.2)  # into the sleep step
    assert any((state_root / "tmp").iterdir()), "the build should be under way"
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    assert proc.wait(timeout=10) == code
    assert proc.stderr.read().splitlines()[-1] == "lxrun: build interrupted: no layer or version of it was kept"
    assert store_listing(state_root) == listing
    assert list((state_root / "run").iterdir()) == []
    left = [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"]) if p.info["cmdline"] == marker.split()]
    assert left == [], "a build step outlived its build"


BAD_SPECS: list[tuple[str, dict[str, object], str]] = [
    ("unknown key", {"colour": "red"}, "`colour` is not a known key"),
    ("missing parent", {"parent": "no-such-parent"}, "`parent` 'no-such-parent' is neither a built stack nor a spec"),
    ("own parent", {"parent": "bad"}, "`parent` 'bad' is the stack itself (a cycle)"),
    ("bad version", {"version": "1/2"}, "`version` '1/2' is not a valid version"),
    ("dotted version", {"version": "1..2"}, "`version` '1..2' is not a valid version"),
    ("missing version", {"version": None}, "`version` is missing"),
    ("version not a string", {"version": 2}, "`version` must be a string"),
    ("name with a slash", {"name": "a/bad"}, "`name` 'a/bad' is not a valid name"),
    ("name with ..", {"name": "..bad"}, "`name` '..bad' is not a valid name"),
    ("name not the file's", {"name": "other"}, "`name` 'other' differs from the file's name"),
    ("bad package name", {"packages": ["Not_A_Package"]}, "`packages` 'Not_A_Package' is not a valid Debian package"),
    ("packages without apt", {"packages": ["hello"]}, "`packages` needs apt-get, which parent busybox@1 lacks"),
    ("run not a list", {"run": "echo"}, "`run` must be a list of non-empty strings"),
    ("bad env", {"env": {"A=B": "c"}}, "`env` 'A=B': variable names must be non-empty without '=' or NUL"),
]


@pytest.mark.parametrize(("fields", "message"), [case[1:] for case in BAD_SPECS], ids=[case[0] for case in BAD_SPECS])
def test_a_bad_spec_is_one_line_naming_file_and_key_and_writes_nothing(
    state_root: Path, specs: Path, fields: dict[str, object], message: str
) -> None:
    path = write_stack(specs, "bad", **{"run": ["true"], **fields})  # type: ignore[arg-type]
    listing = store_listing(state_root)
    done = lxrun_cli(state_root, "stack", "build", "bad")
    assert (done.returncode, done.stdout) == (125, "")
    assert done.stderr.startswith(f"lxrun: spec {path}: {message}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert store_listing(state_root) == listing


def test_a_cycle_is_named_whole(state_root: Path, specs: Path) -> None:
    path = write_stack(specs, "cyc-a", parent="cyc-b")
    write_stack(specs, "cyc-b", parent="cyc-c")
    write_stack(specs, "cyc-c", parent="cyc-a")
    with pytest.raises(SpecError) as raised:
        build(state_root, "cyc-a")
    assert (
        str(raised.value)
        == f"spec {path.parent / 'cyc-c.toml'}: `parent` makes a cycle: cyc-a -> cyc-b -> cyc-c -> cyc-a"
    )
    assert not (state_root / "stacks" / "cyc-a").exists()


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", "x..y"])
def test_a_stack_name_with_a_slash_or_dots_is_refused(state_root: Path, name: str) -> None:
    done = lxrun_cli(state_root, "stack", "build", name)
    assert done.returncode == 125
    assert done.stderr == f"lxrun: spec {name}: is not a valid name (use letters, digits and . _ + -, no / or ..)\n"
