"""`lxrun stack import`: images made here by hand (docker save tarballs, OCI layouts) become stacks layer
for layer, with overlayfs's whiteouts and opaque dirs (needs root: a 0/0 node and a trusted.* xattr)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from lxrun.runtime import Runtime
from tests.conftest import require
from tests.integration import imagetools as it
from tests.integration.conftest import LXRUN

BASE = it.busybox_layer()
TOP = it.layer_tar(
    [
        it.directory("etc"),
        it.whiteout("etc/group"),
        it.opaque("etc"),
        it.file("etc/hostname.d", "new"),
        it.directory("data"),
        it.file("data/tool", "#!/bin/sh\n", mode=0o4755),
        it.hardlink("data/alias", "data/tool"),
        it.symlink("data/link", "/etc/passwd"),
        it.file("data/tagged", "t", pax_headers={"SCHILY.xattr.user.note": "kept", "SCHILY.xattr.trusted.x": "no"}),
    ]
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    require(os.geteuid() == 0, "needs root to make whiteouts and trusted xattrs as overlayfs does")
    return tmp_path / "root"


def stored_layers(root: Path) -> list[str]:
    return sorted(os.listdir(root / "layers")) if (root / "layers").is_dir() else []


def test_a_docker_archive_becomes_one_layer_per_image_layer(root: Path, tmp_path: Path) -> None:
    config = it.image_config([BASE, TOP], Env=["A=1", "PATH=/bin"], Cmd=["sh"], Labels={"team": "x"})
    archive = it.docker_archive(tmp_path / "img.tar", [BASE, TOP], config)
    imported = Runtime(root).import_stack("img", str(archive))
    diff_ids = [it.sha256(layer).removeprefix("sha256:") for layer in (BASE, TOP)]
    assert imported.version.layers == tuple(diff_ids) and imported.stored == 2
    assert imported.version.env == {"A": "1", "PATH": "/bin"} and imported.version.labels == {"team": "x"}
    assert imported.version.image is not None and imported.version.image.cmd == ("sh",)
    top = root / "layers" / diff_ids[1] / "rootfs"
    gone = os.lstat(top / "etc/group")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0  # a whiteout, as overlayfs writes one
    assert os.getxattr(top / "etc", "trusted.overlay.opaque") == b"y"
    assert not (top / "etc/.wh..wh..opq").exists()
    tool = os.lstat(top / "data/tool")
    assert tool.st_mode & 0o7777 == 0o4755 and tool.st_nlink == 2
    assert os.lstat(top / "data/alias").st_ino == tool.st_ino
    assert os.readlink(top / "data/link") == "/etc/passwd"
    assert os.getxattr(top / "data/tagged", "user.note") == b"kept"
    assert "trusted.x" not in os.listxattr(top / "data/tagged")
    assert Runtime(root).inspect_stack("img").current


def test_a_reimport_stores_nothing_and_images_share_their_base(root: Path, tmp_path: Path) -> None:
    runtime = Runtime(root)
    first = runtime.import_stack("one", str(it.docker_archive(tmp_path / "a.tar", [BASE, TOP])))
    layers = stored_layers(root)
    again = runtime.import_stack("one", str(it.docker_archive(tmp_path / "a.tar", [BASE, TOP])))
    assert again.stored == 0 and again.version.version == first.version.version and stored_layers(root) == layers
    other_top = it.layer_tar([it.file("other", "o")])
    second = runtime.import_stack("two", str(it.docker_archive(tmp_path / "b.tar", [BASE, other_top])))
    assert second.stored == 1 and len(stored_layers(root)) == 3  # the base once
    usage = runtime.df()
    assert usage.as_layers < usage.flattened


def test_oci_layouts_as_directory_and_tar_with_a_platform_index(root: Path, tmp_path: Path) -> None:
    layout = it.two_platform_layout(tmp_path / "oci", [BASE, TOP], [BASE])
    runtime = Runtime(root)
    picked = runtime.import_stack("oci", str(layout), platform="linux/amd64")
    assert len(picked.version.layers) == 2
    arm = runtime.import_stack("arm", str(it.tar_of(layout, tmp_path / "oci.tar")), platform="linux/arm64/v8")
    assert arm.version.layers == picked.version.layers[:1] and arm.stored == 0


def test_versions_of_an_imported_stack_promote_roll_back_and_collect(root: Path, tmp_path: Path) -> None:
    runtime = Runtime(root)
    old = runtime.import_stack("app", str(it.docker_archive(tmp_path / "1.tar", [BASE, TOP])))
    new_top = it.layer_tar([it.file("v2", "2")])
    new = runtime.import_stack("app", str(it.docker_archive(tmp_path / "2.tar", [BASE, new_top])))
    assert [cost.version.version for cost in runtime.stack_versions()] == [old.version.version, new.version.version]
    assert runtime.rollback("app").current == old.version.version
    runtime.promote(new.version.ref)
    runtime.remove_stack(old.version.ref)
    collected = runtime.gc(layers=True).layers
    assert collected is not None and list(collected.layers) == [old.version.layers[1]]
    assert stored_layers(root) == sorted(new.version.layers)


def test_an_imported_image_runs_with_lower_files_hidden_as_docker_hides_them(state_root: Path, tmp_path: Path) -> None:
    lower = it.layer_tar([it.directory("opq"), it.file("opq/old", "o"), it.file("gone", "g"), it.file("stays", "s")])
    upper = it.layer_tar([it.directory("opq"), it.opaque("opq"), it.file("opq/new", "n"), it.whiteout("gone")])
    archive = it.docker_archive(tmp_path / "img.tar", [BASE, lower, upper])
    # The session's root may hold BASE already: test_image_docker's image is built on it.
    new = 3 - (it.sha256(BASE).removeprefix("sha256:") in stored_layers(state_root))
    done = subprocess.run(
        [LXRUN, "stack", "import", "--root", str(state_root), "hidden", str(archive)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hidden@") and f"stored={new}/3" in done.stdout
    listing = subprocess.run(
        [LXRUN, "exec", "--root", str(state_root), "--stack", "hidden", "--", "ls", "/", "/opq"],
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    assert "gone" not in listing.stdout.split() and "stays" in listing.stdout.split()
    assert listing.stdout.split("/opq:")[1].split() == ["new"]


def lxrun_exec(root: Path, *args: str) -> str:
    done = subprocess.run([LXRUN, "exec", "--root", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_image_config_runs_as_docker_run_reads_it(state_root: Path, tmp_path: Path) -> None:
    config = it.image_config(
        [BASE], Entrypoint=["/bin/echo", "ep"], Cmd=["c1"], WorkingDir="/work", User="app", Env=["A=img"]
    )
    Runtime(state_root).import_stack("conf", str(it.docker_archive(tmp_path / "c.tar", [BASE], config)))
    assert lxrun_exec(state_root, "--stack", "conf") == "ep c1\n"
    assert lxrun_exec(state_root, "--stack", "conf", "--", "x", "y") == "ep x y\n"
    script = 'id -u; id -g; pwd; echo "$A"'
    as_image = lxrun_exec(state_root, "--stack", "conf", "--entrypoint", "/bin/sh", "--", "-c", script)
    assert as_image.split() == ["1000", "1000", "/work", "img"]
    overridden = ["-u", "0", "-w", "/tmp", "-e", "A=mine", "--entrypoint", "/bin/sh", "--", "-c", script]
    assert lxrun_exec(state_root, "--stack", "conf", *overridden).split() == ["0", "0", "/tmp", "mine"]
    shown = subprocess.run(
        [LXRUN, "stack", "inspect", "--root", str(state_root), "conf"], capture_output=True, text=True, check=True
    ).stdout
    assert f"image  {it.sha256(json.dumps(config).encode())}" in shown
    assert 'entrypoint ["/bin/echo", "ep"]' in shown and "imported" in shown.splitlines()[0]
    assert "user   app" in shown and "workdir /work" in shown


def test_entrypoint_on_a_built_stack_and_no_command_refused(state_root: Path) -> None:
    assert lxrun_exec(state_root, "--stack", "busybox", "--entrypoint", "/bin/echo", "--", "hi") == "hi\n"
    done = subprocess.run([LXRUN, "exec", "--root", str(state_root), "--stack", "busybox"], capture_output=True)
    assert done.returncode == 125 and b"command: no command given" in done.stderr


def test_a_layer_listed_twice_is_mounted_once_where_it_is_listed_last(root: Path, tmp_path: Path) -> None:
    # Docker lists one empty layer for many steps; overlayfs refuses a lower dir twice (ELOOP).
    again = it.layer_tar([it.file("x", "from again\n"), it.file("only-again", "a")])
    over = it.layer_tar([it.file("x", "from over\n"), it.file("over", "o")])
    archive = it.docker_archive(tmp_path / "twice.tar", [BASE, again, over, again])
    imported = Runtime(root).import_stack("twice", str(archive))
    digests = [it.sha256(layer).removeprefix("sha256:") for layer in (BASE, over, again)]
    assert imported.version.layers == tuple(digests) and imported.stored == 3
    shown = subprocess.run(
        [LXRUN, "exec", "--root", str(root), "--stack", "twice", "--", "cat", "/x", "/over", "/only-again"],
        capture_output=True,
        text=True,
    )
    assert (shown.returncode, shown.stdout) == (0, "from again\noa"), shown.stderr
