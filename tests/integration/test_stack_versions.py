"""Stack versions on busybox-based stacks: ls, inspect, pins, promote and rollback (atomic under load),
rm (refused while in use), gc --layers, df, and the independence of one stack from another's rebuild."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lxrun import Result, TaskSpec, Volume, run
from lxrun.layout import Layout
from lxrun.store.bases import build_base
from lxrun.store.builds import Built, build_stack
from lxrun.store.layers import LayerStore
from lxrun.store.specs import find_spec, load_base_spec
from lxrun.store.stacks import StackStore
from lxrun.store.usage import Accountant

from .conftest import lxrun_cli, sh
from .stacktools import specs_env, store_listing, tree_hash, write_stack


@pytest.fixture
def state_root(tmp_path_factory: pytest.TempPathFactory, native_ready: None) -> Iterator[Path]:
    """A fresh state root per test, with the busybox base: what a test counts in it is its own."""
    root = tmp_path_factory.mktemp("lxrun-versions")
    build_base(load_base_spec(find_spec("rootfs", "busybox")), Layout(root))
    yield root
    assert list((root / "tmp").iterdir()) == [], "something was left in tmp/"


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "specs"
    monkeypatch.setenv("LXRUN_SPECS", specs_env(directory))
    return directory


def build(root: Path, name: str, promote: bool = True) -> Built:
    with open(os.devnull, "w") as devnull:
        return build_stack(name, Layout(root), log_fd=devnull.fileno(), promote=promote)


def cli_ok(root: Path, *args: str) -> str:
    done = lxrun_cli(root, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cli_refused(root: Path, *args: str) -> str:
    done = lxrun_cli(root, *args)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (125, "", 1), done
    return done.stderr


class HeldTask:
    """A task that prints /f, waits until released, prints /f again: a task in flight during a test."""

    def __init__(self, root: Path, stack: str, sync: Path) -> None:
        self.sync = sync
        sync.mkdir()
        started = threading.Event()
        script = "cat /f; while [ ! -e /sync/go ]; do sleep 0.02; done; cat /f"
        spec = TaskSpec(stack=stack, argv=["sh", "-c", script], volumes=[Volume(str(sync), "/sync")])
        self.pool = ThreadPoolExecutor(1)
        self.future = self.pool.submit(run, spec, root=root, on_start=lambda _handle: started.set())
        assert started.wait(10)

    def release(self) -> Result:
        (self.sync / "go").touch()
        result = self.future.result(timeout=10)
        self.pool.shutdown()
        return result


def test_versions_pins_promote_and_rollback(state_root: Path, specs: Path) -> None:
    for version in ("1", "2"):
        write_stack(specs, "ver", version=version, run=[f"echo {version} > /v"])
        build(state_root, "ver")
    assert sh(state_root, "cat /v", stack="ver").stdout == b"2\n"
    assert sh(state_root, "cat /v", stack="ver@1").stdout == b"1\n"

    listing = cli_ok(state_root, "stack", "ls").splitlines()
    assert listing[0].split() == ["NAME", "VERSION", "CURRENT", "LAYERS", "DIFF", "TOTAL", "PARENT"]
    rows = [line.split() for line in listing[1:]]
    assert rows[0][:4] == ["busybox", "1", "*", "1"]
    assert rows[1][:3] == ["ver", "1", "2"]  # not current: the column is empty
    assert rows[2][:4] == ["ver", "2", "*", "2"]

    assert cli_ok(state_root, "stack", "promote", "ver@1") == "ver: current is 1 (was 2)\n"
    assert sh(state_root, "cat /v", stack="ver").stdout == b"1\n"
    assert cli_ok(state_root, "stack", "rollback", "ver") == "ver: current is 2 (was 1)\n"
    assert cli_ok(state_root, "stack", "rollback", "ver") == "ver: current is 1 (was 2)\n"
    assert "rollback ver: no version before 1 to go back to" in cli_refused(state_root, "stack", "rollback", "ver")

    inspected = json.loads(cli_ok(state_root, "stack", "inspect", "ver@2", "--json"))
    assert (inspected["current"], inspected["parent"], len(inspected["layers"])) == (False, "busybox@1", 2)
    assert inspected["layers"][1]["kind"] == "diff"
    assert inspected["total"] == sum(layer["size"] for layer in inspected["layers"])
    text = cli_ok(state_root, "stack", "inspect", "ver")
    assert text.startswith("ver@1 (current), built ") and " on busybox@1\n" in text


def test_a_version_never_changes(state_root: Path, specs: Path) -> None:
    path = write_stack(specs, "fixed", run=["echo a > /v"])
    build(state_root, "fixed")
    write_stack(specs, "fixed", run=["echo b > /v"])
    listing = store_listing(state_root)
    error = cli_refused(state_root, "stack", "build", "fixed")
    assert error == (
        "lxrun: stack fixed: version 1 already exists with other layers"
        " (a version never changes: bump `version` in its spec)\n"
    )
    assert store_listing(state_root) == listing
    assert path.exists()


def test_no_promote_records_without_switching(state_root: Path, specs: Path) -> None:
    write_stack(specs, "staged", run=["echo 1 > /v"])
    build(state_root, "staged", promote=False)  # the first version is current all the same
    write_stack(specs, "staged", version="2", run=["echo 2 > /v"])
    assert cli_ok(state_root, "stack", "build", "staged", "--no-promote").startswith("staged@2 built")
    assert StackStore(Layout(state_root)).current_version("staged") == "1"
    assert sh(state_root, "cat /v", stack="staged@2").stdout == b"2\n"


def test_rm_is_refused_for_the_current_version_and_while_a_task_runs(
    state_root: Path, specs: Path, tmp_path: Path
) -> None:
    for version in ("1", "2"):
        write_stack(specs, "rmme", version=version, run=[f"echo {version} > /f"])
        build(state_root, "rmme")
    assert "stack rm rmme@2: is the current version" in cli_refused(state_root, "stack", "rm", "rmme@2")
    assert "stack rmme: needs a version" in cli_refused(state_root, "stack", "rm", "rmme")

    held = HeldTask(state_root, "rmme@1", tmp_path / "sync")
    try:
        error = cli_refused(state_root, "stack", "rm", "rmme@1")
        assert error == "lxrun: stack rm rmme@1: a running task uses it (wait for it to end)\n"
    finally:
        assert held.release().stdout == b"1\n1\n"
    old_layer = StackStore(Layout(state_root)).version("rmme", "1").layers[-1]
    assert cli_ok(state_root, "stack", "rm", "rmme@1").startswith("removed rmme@1")
    assert "has no version 1" in cli_refused(state_root, "exec", "--stack", "rmme@1", "--", "true")

    # The layer stays until gc, which removes it and only it.
    layers_before = set(os.listdir(state_root / "layers"))
    assert old_layer in layers_before
    out = [line for line in cli_ok(state_root, "gc", "--layers").splitlines() if "layer" in line]
    assert out == [f"removed layer {old_layer[:12]}", out[-1]]
    assert out[-1].startswith("1 layers removed, ")
    assert set(os.listdir(state_root / "layers")) == layers_before - {old_layer}
    assert cli_ok(state_root, "gc", "--layers").splitlines()[-1] == "0 layers removed, 0B freed"
    assert sh(state_root, "cat /f", stack="rmme").stdout == b"2\n"


def test_gc_keeps_what_a_live_build_holds_and_clears_what_killed_builds_left(state_root: Path) -> None:
    layout = Layout(state_root)
    layers = LayerStore(layout)
    with layers.building() as work:
        fresh = layers.commit(work, "f" * 64, parent=None, kind="diff", source="test").digest  # no version yet
    live = state_root / "run" / "build-live.json"
    live.write_text(json.dumps({"stack": "busybox@1", "layers": [fresh], "runner_pid": os.getpid()}))
    dead = state_root / "run" / "build-dead.json"
    dead.write_text(json.dumps({"stack": "busybox@1", "layers": [fresh], "runner_pid": 999999999}))
    abandoned = state_root / "tmp" / "layer-999999999-0123456789abcdef"  # a pid that cannot exist
    (abandoned / "rootfs").mkdir(parents=True)
    mine = state_root / "tmp" / f"layer-{os.getpid()}-0123456789abcdef"  # a build of a live process
    mine.mkdir()
    try:
        collected = cli_ok(state_root, "gc", "--layers").splitlines()
        assert f"removed {abandoned} (left by a killed build)" in collected
        assert f"removed {dead} (left by a killed build)" in collected
        assert collected[-1] == "0 layers removed, 0B freed"
        assert not abandoned.exists() and not dead.exists() and mine.exists() and layers.exists(fresh)
    finally:
        mine.rmdir()
        live.unlink()
    assert f"removed layer {fresh[:12]}" in cli_ok(state_root, "gc", "--layers").splitlines()
    assert layers.digests() == list(StackStore(layout).version("busybox", "1").layers)


def test_promote_and_rollback_are_atomic_under_load(state_root: Path, specs: Path) -> None:
    # flip@1 = busybox + a1 + b1 and flip@2 = busybox + a2 + b2: a task must see 1 1 or 2 2, never a mix.
    for version in ("1", "2"):
        write_stack(specs, "flip-base", version=version, run=[f"echo {version} > /a"])
        write_stack(specs, "flip", version=version, parent="flip-base", run=[f"echo {version} > /b"])
        build(state_root, "flip-base")
        build(state_root, "flip")
    stacks = StackStore(Layout(state_root))
    assert len(stacks.version("flip", "2").layers) == 3
    stop = threading.Event()

    def promoter() -> int:
        switches = 0
        while not stop.is_set():
            stacks.promote("flip", "1")
            stacks.rollback("flip")
            switches += 2
        return switches

    def tasks() -> list[bytes | None]:
        return [sh(state_root, "cat /a /b", stack="flip").stdout for _ in range(40)]

    with ThreadPoolExecutor(5) as pool:
        switching = pool.submit(promoter)
        runners = [pool.submit(tasks) for _ in range(4)]
        seen = [output for runner in runners for output in runner.result(timeout=120)]
        stop.set()
        assert switching.result() > 20
    assert set(seen) == {b"1\n1\n", b"2\n2\n"}, set(seen)


def test_rebuilding_one_stack_leaves_every_other_untouched(state_root: Path, specs: Path, tmp_path: Path) -> None:
    layout = Layout(state_root)
    stacks = StackStore(layout)
    write_stack(specs, "ind-a", run=["echo a1 > /f"])
    write_stack(specs, "ind-b", run=["echo b1 > /f"])
    write_stack(specs, "ind-c", parent="ind-b", run=["echo c1 > /g"])
    for name in ("ind-a", "ind-b", "ind-c"):
        build(state_root, name)

    def snapshot() -> dict[str, object]:
        versions = {name: stacks.version(name, "1") for name in ("ind-a", "ind-b", "ind-c")}
        digests = {digest for version in versions.values() for digest in version.layers}
        return {
            "versions": {name: version.to_json() for name, version in versions.items()},
            "layers": {digest: tree_hash(state_root / "layers" / digest) for digest in digests},
            "current": {name: stacks.current_version(name) for name in ("ind-b", "ind-c")},
        }

    before = snapshot()
    held = HeldTask(state_root, "ind-a", tmp_path / "sync")
    try:
        write_stack(specs, "ind-a", version="2", run=["echo a2 > /f"])
        rebuilt = build(state_root, "ind-a").version
        assert stacks.current_version("ind-a") == "2"
        assert snapshot() == before
        assert rebuilt.layers[-1] not in before["layers"]  # type: ignore[operator]
        assert sh(state_root, "cat /f", stack="ind-a").stdout == b"a2\n"
    finally:
        old = held.release()
    assert old.stdout == b"a1\na1\n" and old.stack == "ind-a@1"


def test_df_shows_shared_layers_next_to_flattened_images(state_root: Path, specs: Path) -> None:
    for name in ("df-a", "df-b"):
        write_stack(specs, name, run=["head -c 300000 /dev/urandom > /blob"])
        build(state_root, name)
    layers = LayerStore(Layout(state_root))
    base = layers.info(StackStore(Layout(state_root)).version("busybox", "1").layers[0]).size
    diffs = [layers.info(StackStore(Layout(state_root)).version(name, "1").layers[1]).size for name in ("df-a", "df-b")]

    usage = Accountant(Layout(state_root)).current()
    assert [cost.version.ref for cost in usage.stacks] == ["busybox@1", "df-a@1", "df-b@1"]
    assert usage.as_layers == base + sum(diffs)
    assert usage.flattened == base + (base + diffs[0]) + (base + diffs[1])

    out = cli_ok(state_root, "df").splitlines()
    assert out[0].split() == ["STACK", "LAYERS", "OWN", "FLATTENED"]
    assert [line.split()[:2] for line in out[1:4]] == [["busybox@1", "1"], ["df-a@1", "2"], ["df-b@1", "2"]]
    assert out[5].startswith("3 stacks as layers, each stored once: ")
    assert out[6].startswith("3 stacks as flattened images: ") and out[6].endswith("x)")
