"""Stacks on images: a stack spec whose parent is an imported image builds with lxrun's build and
versions, and runs with the image's config (Entrypoint, Cmd, WorkingDir, User, Env) unless the spec
says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from lxrun.layout import Layout
from lxrun.runtime import Runtime
from lxrun.store.builds import build_stack
from tests.integration import imagetools as it
from tests.integration.conftest import LXRUN
from tests.integration.stacktools import specs_env, write_stack

SCRIPT = 'echo "$A $B"; pwd; id -u'


@pytest.fixture
def root(tmp_path: Path, native_ready: None, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state root of its own (the session's must not hold the test image's base) with image `img`
    imported: an Entrypoint and Cmd, WorkingDir, User and Env; specs in tmp_path/specs."""
    monkeypatch.setenv("LXRUN_SPECS", specs_env(tmp_path / "specs"))
    base = it.busybox_layer()
    config = it.image_config(
        [base], Entrypoint=["/bin/sh", "-c"], Cmd=[SCRIPT], WorkingDir="/etc", User="app", Env=["A=img", "PATH=/bin"]
    )
    root = tmp_path / "root"
    Runtime(root).import_stack("img", str(it.docker_archive(tmp_path / "img.tar", [base], config)))
    return root


def build(root: Path, name: str) -> None:
    with open(os.devnull, "w") as devnull:
        build_stack(name, Layout(root), log_fd=devnull.fileno())


def run(root: Path, *args: str) -> str:
    done = subprocess.run(
        [LXRUN, "exec", "--stack", *args], capture_output=True, text=True, env={**os.environ, "LXRUN_ROOT": str(root)}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_stack_on_an_image_runs_with_the_image_config(root: Path, tmp_path: Path) -> None:
    write_stack(tmp_path / "specs", "on-img", parent="img", run=["echo built > /built"], env={"B": "child"})
    build(root, "on-img")
    stack = Runtime(root).inspect_stack("on-img").stack
    parent = Runtime(root).inspect_stack("img").stack
    assert stack.parent == parent.ref and stack.layers[:1] == parent.layers and len(stack.layers) == 2
    assert stack.image == parent.image  # the digest and source of the image it was built on included
    assert run(root, "on-img").split("\n") == ["img child", "/etc", "1000", ""]
    assert run(root, "on-img", "--entrypoint", "/bin/cat", "--", "/built") == "built\n"
    shown = subprocess.run(
        [LXRUN, "stack", "inspect", "--root", str(root), "on-img"], capture_output=True, text=True, check=True
    ).stdout
    assert shown.splitlines()[0].endswith(f"on {parent.ref}") and "user   app" in shown
    exported = Runtime(root).export_stack("on-img", str(tmp_path / "on-img.tar"))
    with tarfile.open(tmp_path / "on-img.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))["config"]  # type: ignore[arg-type]
    assert (config["Entrypoint"], config["Cmd"], config["User"]) == (["/bin/sh", "-c"], [SCRIPT], "app")
    assert len(exported.diff_ids) == 2


def test_a_spec_overrides_the_image_config_and_its_children_inherit(root: Path, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_stack(specs, "own-cmd", parent="img", cmd=['echo "own $A"'], workdir="/", user="0")
    write_stack(specs, "own-entry", parent="own-cmd", entrypoint=["/bin/echo"])
    build(root, "own-entry")  # builds own-cmd first
    assert run(root, "own-cmd") == "own img\n"
    assert run(root, "own-cmd", "--entrypoint", "/bin/sh", "--", "-c", "pwd; id -u") == "/\n0\n"
    # A new entrypoint drops the parent's cmd (as in a Dockerfile); workdir and user are inherited.
    assert run(root, "own-entry") == "\n"
    assert run(root, "own-entry", "--", "a", "b") == "a b\n"
    image = Runtime(root).inspect_stack("own-entry").stack.image
    assert image is not None and (image.entrypoint, image.cmd, image.workdir, image.user) == (
        ("/bin/echo",),
        None,
        "/",
        "0",
    )
